// Command tidal-metrics-adapter serves custom.metrics.k8s.io and external.metrics.k8s.io on
// the local control plane: the provider of sigs.k8s.io/custom-metrics-apiserver's test
// adapter (custom metric values written over HTTP under /write-metrics/..., a fixed set of
// external metrics) behind that library's adapter server.
//
// Why a main of our own rather than the module's test-adapter command: that command serves
// its write API on :8080 of every interface, a fixed port. On this rig every component binds
// to loopback, several clusters may run on one machine, and the README's operator walkthrough
// uses 127.0.0.1:8080. Here both listeners take the address they are given (port 0: any free
// port), and the ports they got are written to --ports-file for cluster.sh, which registers
// the APIServices with them. Everything that decides what the metrics APIs answer is the
// module's own code.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/emicklei/go-restful/v3"
	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"

	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	testprovider "sigs.k8s.io/custom-metrics-apiserver/test-adapter/provider"
)

func main() {
	logs.InitLogs()
	defer logs.FlushLogs()

	var adapter basecmd.AdapterBase
	adapter.Name = "tidal-metrics-adapter"
	flags := adapter.Flags()
	writeAddress := flags.String("write-address", "127.0.0.1:0",
		"host:port of the plain-HTTP write API (POST /write-metrics/...); port 0 takes a free port")
	portsFile := flags.String("ports-file", "",
		"once both listeners are open, write 'secure_port=N' and 'write_port=N' lines to this file")
	logs.AddFlags(flags)
	if err := flags.Parse(os.Args[1:]); err != nil {
		klog.Fatalf("unable to parse flags: %v", err)
	}

	// The secure listener is opened here so that --secure-port=0 means "any free port" (the
	// library's options would not serve at all on port 0) and the port is known before Run.
	serving := adapter.SecureServing
	secure, err := net.Listen("tcp", net.JoinHostPort(serving.BindAddress.String(), strconv.Itoa(serving.BindPort)))
	if err != nil {
		klog.Fatalf("unable to listen for the metrics APIs: %v", err)
	}
	serving.Listener = secure
	serving.BindPort = secure.Addr().(*net.TCPAddr).Port

	write, err := net.Listen("tcp", *writeAddress)
	if err != nil {
		klog.Fatalf("unable to listen for the write API on %s: %v", *writeAddress, err)
	}

	client, err := adapter.DynamicClient()
	if err != nil {
		klog.Fatalf("unable to construct the dynamic client: %v", err)
	}
	mapper, err := adapter.RESTMapper()
	if err != nil {
		klog.Fatalf("unable to construct the discovery REST mapper: %v", err)
	}
	provider, writeService := testprovider.NewFakeProvider(client, mapper)
	adapter.WithCustomMetrics(provider)
	adapter.WithExternalMetrics(provider)

	container := restful.NewContainer()
	container.Add(writeService)
	go func() {
		server := &http.Server{Handler: container, ReadHeaderTimeout: 3 * time.Second}
		klog.Fatal(server.Serve(write))
	}()

	if *portsFile != "" {
		ports := fmt.Sprintf("secure_port=%d\nwrite_port=%d\n",
			serving.BindPort, write.Addr().(*net.TCPAddr).Port)
		if err := os.WriteFile(*portsFile, []byte(ports), 0o644); err != nil {
			klog.Fatalf("unable to write %s: %v", *portsFile, err)
		}
	}
	klog.Infof("serving the metrics APIs on %s and the write API on %s", secure.Addr(), write.Addr())
	if err := adapter.Run(context.Background()); err != nil {
		klog.Fatalf("unable to run the metrics adapter: %v", err)
	}
}

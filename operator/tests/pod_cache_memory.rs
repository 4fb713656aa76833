//! What the pod cache holds per pod, in heap bytes: pods as the local cluster's kwok nodes serve
//! them (the scale harness's Deployments: managed fields, a projected token volume, four
//! conditions, one container), decoded from text as the watch decodes them, then kept as
//! `CachedPod`s in the namespace and label index. Byte counts of this test binary's allocator
//! are exact and repeatable, unlike resident memory; the scale harness measures that. Measured
//! 2026-12-04: 24,786 B per decoded pod, 1,560 B per cached pod; the pruned `Pod` the cache
//! kept before took 6,485 B (without its share of the index).
//!
//! dhat (its heap-usage testing mode) counts the bytes: `curr_bytes` is what is allocated now.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use tidal::pods::{PodIndex, cached};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn live() -> usize {
    dhat::HeapStats::get().curr_bytes
}

const PODS: usize = 2_000;

/// Pod `i` of Deployment `w-i` in one of ten namespaces, as kwok serves it (4.6 KB of JSON).
fn pod_json(i: usize) -> String {
    let ns = format!("tidal-scale-{}", i % 10);
    let hash = format!("{:010x}", 0x0078_df67_4f65_u64 + i as u64);
    let name = format!("w-{i}-{hash}-t2fm9");
    let time = "2026-12-04T19:53:28Z";
    let conditions: Vec<serde_json::Value> =
        ["PodScheduled", "Initialized", "ContainersReady", "Ready"]
            .iter()
            .map(|t| {
                serde_json::json!({"type": t, "status": "True", "lastProbeTime": null,
                                    "lastTransitionTime": time})
            })
            .collect();
    serde_json::json!({
        "metadata": {
            "name": name, "generateName": format!("w-{i}-{hash}-"), "namespace": ns,
            "uid": format!("35836886-adf0-4109-bb93-{i:012}"), "resourceVersion": "848",
            "generation": 1, "creationTimestamp": time,
            "labels": {"app": format!("w-{i}"), "pod-template-hash": hash},
            "annotations": {"kwok.x-k8s.io/usage-cpu": "4500u",
                            "pod-ready.stage.kwok.x-k8s.io/delay": "0ms"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": format!("w-{i}-{hash}"),
                                 "uid": "9c69bed9-ffef-401a-8684-947c30bd4d20",
                                 "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                 "time": time, "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}}},
                              "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}}}}},
                {"manager": "kwok-controller", "operation": "Update", "apiVersion": "v1",
                 "time": time, "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:phase": {}, "f:podIP": {}, "f:startTime": {}}}}
            ]
        },
        "spec": {
            "volumes": [{"name": "kube-api-access-79r4k", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]}}],
            "containers": [{
                "name": "app", "image": "registry.invalid/tidal/fake-app:1",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                "volumeMounts": [{"name": "kube-api-access-79r4k", "readOnly": true,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 0, "dnsPolicy": "ClusterFirst",
            "nodeSelector": {"type": "kwok"}, "serviceAccountName": "default",
            "serviceAccount": "default", "nodeName": format!("kwok-node-{}", i % 41),
            "securityContext": {}, "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 300}
            ],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "podIP": "10.0.0.4", "podIPs": [{"ip": "10.0.0.4"}], "startTime": time,
            "containerStatuses": [{"name": "app", "state": {"running": {"startedAt": time}},
                                   "lastState": {}, "ready": true, "restartCount": 0,
                                   "image": "registry.invalid/tidal/fake-app:1", "imageID": "",
                                   "started": true}],
            "qosClass": "Burstable"
        }
    })
    .to_string()
}

fn decode(text: &str) -> Pod {
    serde_json::from_str(text).expect("pod")
}

#[test]
fn the_pod_cache_holds_a_pod_in_under_two_kibibytes_a_tenth_of_the_decoded_pod() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let texts: Vec<String> = (0..PODS).map(pod_json).collect();

    let before = live();
    let decoded: Vec<Arc<Pod>> = texts.iter().map(|t| Arc::new(decode(t))).collect();
    let per_decoded = (live() - before) / PODS;
    drop(decoded);

    let before = live();
    let (index, mut writer) = PodIndex::new();
    writer.apply(watcher::Event::Init);
    for text in &texts {
        writer.apply(cached(watcher::Event::InitApply(decode(text))));
    }
    writer.apply(watcher::Event::InitDone);
    let per_cached = (live() - before) / PODS;
    assert_eq!(index.len(), PODS);

    println!(
        "heap per pod: {per_decoded} B decoded (Arc<Pod>), {per_cached} B in the pod cache \
         (CachedPod and its share of the index), {PODS} pods"
    );
    assert!(
        per_cached <= 2048,
        "the pod cache holds {per_cached} B per pod, more than 2 KiB"
    );
    assert!(
        per_cached * 10 <= per_decoded,
        "the pod cache holds {per_cached} B per pod, more than a tenth of a decoded pod's {per_decoded} B"
    );
}

//! Prints the AutoScaler CRD YAML; its output is committed as `crds/autoscaler.yaml`.

fn main() -> std::process::ExitCode {
    match tidal_crds::crd_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("crdgen: cannot render the CRD: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

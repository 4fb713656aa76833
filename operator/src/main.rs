//! The `tidal` binary: parse arguments and hand over. Installed as `kubectl-tidal`, it is a
//! kubectl plugin (`kubectl tidal explain ...`) and names itself so in help and errors.

fn main() -> std::process::ExitCode {
    tidal::cmd::run(tidal::cmd::parse_from(std::env::args_os()))
}

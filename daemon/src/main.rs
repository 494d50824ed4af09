//! The `sessiond` binary: the daemon (`serve`) and its command-line client.

fn main() -> std::process::ExitCode {
    sessiond::client::main()
}

//! The `sessiond` binary: the daemon (`serve`) and its command-line client.

fn main() -> std::process::ExitCode {
    // First, before most of the code is run: the daemon keeps only the code pages it
    // runs resident (see `text_pages`). A client command is short-lived and left alone.
    if std::env::args_os().skip(1).any(|a| a == "serve") {
        sessiond::text_pages::advise_random();
    }
    sessiond::client::main()
}

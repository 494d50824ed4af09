//! Generated texts: shell completions, the man page, the OpenRPC document.

use crate::client::{Cli, Command};
use clap::CommandFactory;
use std::process::ExitCode;

/// `completions SHELL`, `man`, `schema`.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "sessiond", &mut out)
        }
        Command::Man => clap_mangen::Man::new(Cli::command()).render(&mut out)?,
        Command::Schema => {
            let doc = sessiond_protocol::schema::openrpc();
            out = serde_json::to_vec_pretty(&doc)?;
            out.push(b'\n');
        }
        _ => {}
    }
    super::output::text(&String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}

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

#[cfg(test)]
mod tests {
    use crate::client::Cli;
    use clap::CommandFactory;

    fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" && id != "version" && arg.get_help().is_none() && !arg.is_hide_set() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() && sub.get_name() != "help" {
                missing.push(format!("{path} {}", sub.get_name()));
            }
            check(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }

    #[test]
    fn every_verb_flag_and_argument_has_help() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        check(&cmd, "sessiond", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}

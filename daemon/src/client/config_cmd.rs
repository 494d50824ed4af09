//! `sessiond config show|check`.

use super::{Cli, ConfigAction};
use sessiond_config::{Config, LoadOptions};
use std::process::ExitCode;

pub fn run(cli: &Cli, action: &ConfigAction) -> anyhow::Result<ExitCode> {
    let opts = LoadOptions {
        config_file: cli.config.clone(),
        socket: cli.socket.clone(),
        ..Default::default()
    };
    match action {
        ConfigAction::Show => {
            let loaded = Config::load(&opts)?;
            if let Some(src) = &loaded.source {
                println!("# from {}", src.display());
            }
            print!("{}", loaded.config.to_toml_string());
            Ok(ExitCode::SUCCESS)
        }
        ConfigAction::Check => match Config::load(&opts) {
            Ok(loaded) => {
                match &loaded.source {
                    Some(src) => println!("ok: {}", src.display()),
                    None => println!("ok: no config file, built-in defaults"),
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                let problems = e.problems();
                if problems.is_empty() {
                    eprintln!("sessiond: {e}");
                } else {
                    for p in problems {
                        eprintln!("sessiond: {p}");
                    }
                }
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

//! Slash commands typed in the input box, parsed into what the TUI does.

/// A parsed slash command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Model(String),
    Provider(String),
    Temperature(f64),
    Title(String),
    Upload(String),
    Interrupt(String),
    Cancel,
    New,
    Sessions,
    TakeOver,
    Detach,
    Help,
}

/// Parses `/name args`; `Err` is the message to show.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let (name, arg) = match line.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (line, ""),
    };
    let need = |what: &str| -> Result<String, String> {
        if arg.is_empty() {
            Err(format!("{name} needs {what}"))
        } else {
            Ok(arg.to_owned())
        }
    };
    Ok(match name {
        "/model" => Command::Model(need("a model name")?),
        "/provider" => Command::Provider(need("an agent alias")?),
        "/temperature" => {
            let t: f64 = need("a number")?
                .parse()
                .map_err(|_| format!("not a number: {arg}"))?;
            Command::Temperature(t)
        }
        "/title" => Command::Title(need("a title")?),
        "/upload" => Command::Upload(need("a file path")?),
        "/interrupt" => Command::Interrupt(need("a prompt")?),
        "/cancel" => Command::Cancel,
        "/new" => Command::New,
        "/sessions" => Command::Sessions,
        "/take-over" => Command::TakeOver,
        "/detach" => Command::Detach,
        "/help" => Command::Help,
        other => return Err(format!("unknown command {other} (try /help)")),
    })
}

/// The text `/help` shows.
pub const HELP: &str = "Enter send · Alt-Enter newline · Esc cancel the turn · Ctrl-C cancel / clear / twice: detach · Ctrl-D detach
PgUp/PgDn or wheel scroll · Ctrl-O expand tool calls · Tab complete a command
/model NAME · /provider NAME · /temperature X · /title TEXT · /upload PATH · /interrupt TEXT
/cancel · /new · /sessions · /take-over · /detach · /help";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_their_arguments() {
        assert_eq!(parse("/model gpt-x"), Ok(Command::Model("gpt-x".into())));
        assert_eq!(parse("/temperature 0.5"), Ok(Command::Temperature(0.5)));
        assert_eq!(
            parse("/interrupt stop and do this"),
            Ok(Command::Interrupt("stop and do this".into()))
        );
        assert_eq!(parse("/take-over"), Ok(Command::TakeOver));
        assert!(parse("/temperature hot").is_err());
        assert!(parse("/model").is_err());
        assert!(parse("/nope").is_err());
    }
}

//! What each key does on the attach screen, in its dialogs and in the picker (the
//! keys are fixed: scripts and tests drive the TUI with them; see docs/tui.md).

use super::app::{App, AttachScreen, Confirm, Msg, Screen};
use super::commands::{self, Command};
use super::picker::Ask;
use super::session::How;
use super::Exit;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};
use sessiond_client::protocol::params::{
    NewSessionParams, OverridesPatch, PromptParams, PromptResult,
};
use sessiond_protocol::{Mode, Patch, SessionId};
use std::time::{Duration, Instant};

fn ctrl(k: &KeyEvent, c: char) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char(c)
}

impl App {
    pub fn on_paste(&mut self, s: &str) {
        if let Screen::Attach(a) = &mut self.screen {
            a.input.insert_str(s);
        }
    }

    pub fn on_mouse(&mut self, m: MouseEvent) {
        if let Screen::Attach(a) = &mut self.screen {
            match m.kind {
                MouseEventKind::ScrollUp => a.view.scroll_up += 3,
                MouseEventKind::ScrollDown => a.view.scroll_up = a.view.scroll_up.saturating_sub(3),
                _ => {}
            }
        }
    }

    pub fn on_key(&mut self, k: KeyEvent) {
        if k.kind == KeyEventKind::Release {
            return;
        }
        match &self.screen {
            Screen::Attach(_) => self.attach_key(k),
            Screen::Picker(_) => self.picker_key(k),
            Screen::Loading(_) => {
                if ctrl(&k, 'd') || ctrl(&k, 'c') {
                    self.exit = Some(Exit::Detached);
                }
            }
        }
    }

    fn attach(&mut self) -> Option<&mut AttachScreen> {
        match &mut self.screen {
            Screen::Attach(a) => Some(a),
            _ => None,
        }
    }

    fn session_id(&self) -> Option<SessionId> {
        match &self.screen {
            Screen::Attach(a) => Some(a.st.info.session_id.clone()),
            _ => None,
        }
    }

    fn cancel_turn(&mut self) {
        let Some(a) = self.attach() else { return };
        if a.st.read_only() {
            a.st.error("read-only: only the owner may cancel");
            return;
        }
        let id = a.st.info.session_id.clone();
        let rc = self.rc.clone();
        self.spawn(async move {
            rc.client().await?.cancel(&id).await?;
            Ok(None)
        });
    }

    fn attach_key(&mut self, k: KeyEvent) {
        let Some(a) = self.attach() else { return };
        // Confirmation first, then the request dialog, then the screen.
        if a.confirm.is_some() {
            let yes = k.code == KeyCode::Char('y');
            a.confirm = None;
            if yes {
                self.take_over();
            }
            return;
        }
        if ctrl(&k, 'd') {
            self.exit = Some(Exit::Detached);
            return;
        }
        if k.code == KeyCode::Esc {
            self.cancel_turn();
            return;
        }
        if a.dialog.is_some() {
            self.dialog_key(k);
            return;
        }
        if ctrl(&k, 'c') {
            if a.st.running.is_some() && !a.st.read_only() {
                self.cancel_turn();
            } else if a
                .last_ctrl_c
                .is_some_and(|t| t.elapsed() < Duration::from_secs(2))
            {
                self.exit = Some(Exit::Detached);
            } else {
                a.input.clear();
                a.last_ctrl_c = Some(Instant::now());
                a.st.notice("Ctrl-C again within 2 s detaches");
            }
            return;
        }
        if ctrl(&k, 'o') {
            a.view.expand_tools = !a.view.expand_tools;
            return;
        }
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        match k.code {
            KeyCode::Enter if alt || k.modifiers.contains(KeyModifiers::SHIFT) => {
                a.input.insert('\n')
            }
            KeyCode::Enter => self.submit(),
            KeyCode::Char('j') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                a.input.insert('\n')
            }
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => a.input.insert(c),
            KeyCode::Backspace => a.input.backspace(),
            KeyCode::Delete => a.input.delete(),
            KeyCode::Left => a.input.left(),
            KeyCode::Right => a.input.right(),
            KeyCode::Home => a.input.home(),
            KeyCode::End => a.input.end(),
            KeyCode::Tab => a.input.complete(),
            KeyCode::PageUp => a.view.scroll_up += 10,
            KeyCode::PageDown => a.view.scroll_up = a.view.scroll_up.saturating_sub(10),
            _ => {}
        }
    }

    fn dialog_key(&mut self, k: KeyEvent) {
        let Some(a) = self.attach() else { return };
        let Some(d) = a.dialog.as_mut() else { return };
        if k.modifiers.contains(KeyModifiers::CONTROL) {
            return;
        }
        let answer = if d.takes_text() {
            match k.code {
                KeyCode::Enter => d.enter(),
                KeyCode::Char(c) => {
                    d.answer.insert(c);
                    None
                }
                KeyCode::Backspace => {
                    d.answer.backspace();
                    None
                }
                _ => None,
            }
        } else {
            match k.code {
                KeyCode::Char(c @ '1'..='9') => d.pick(c as usize - '1' as usize),
                KeyCode::Up => {
                    d.up();
                    None
                }
                KeyCode::Down => {
                    d.down();
                    None
                }
                KeyCode::Enter => d.enter(),
                _ => None,
            }
        };
        let Some(response) = answer else { return };
        let request_id = d.request.request_id.clone();
        let id = a.st.info.session_id.clone();
        // The dialog closes when `request_resolved` arrives; hide it meanwhile.
        a.st.requests.retain(|r| r.request_id != request_id);
        a.sync_dialog();
        let rc = self.rc.clone();
        self.spawn(async move {
            rc.client()
                .await?
                .respond(&id, Some(request_id), response)
                .await?;
            Ok(None)
        });
    }

    fn submit(&mut self) {
        let Some(a) = self.attach() else { return };
        let text = a.input.text.trim().to_owned();
        if text.is_empty() && a.attachments.is_empty() {
            return;
        }
        if text.starts_with('/') {
            a.input.clear();
            match commands::parse(&text) {
                Ok(c) => self.command(c),
                Err(e) => a.st.error(e),
            }
            return;
        }
        if a.st.read_only() {
            let why = if a.st.watch {
                "read-only: you are watching this session".to_owned()
            } else {
                format!(
                    "read-only: owned by {} (/take-over takes it over)",
                    a.st.owner_words()
                )
            };
            a.st.error(why);
            return;
        }
        a.input.clear();
        self.prompt(text, false);
    }

    fn prompt(&mut self, text: String, interrupt: bool) {
        let Some(a) = self.attach() else { return };
        let id = a.st.info.session_id.clone();
        let attachments: Vec<String> = a.attachments.drain(..).map(|e| e.ref_id).collect();
        let since = a.st.last_seq;
        let unloaded = std::mem::take(&mut a.unloaded);
        let rc = self.rc.clone();
        let tx = self.tx.clone();
        self.spawn(async move {
            let c = rc.client().await?;
            let r = c
                .prompt(PromptParams {
                    session_id: id.clone(),
                    text,
                    attachments: (!attachments.is_empty()).then_some(attachments),
                    interrupt: interrupt.then_some(true),
                    wait: None,
                })
                .await?;
            if let PromptResult::Accepted(a) = r {
                if a.queued_behind > 0 {
                    let _ = tx.send(Msg::Notice(format!(
                        "queued behind {} turn(s)",
                        a.queued_behind
                    )));
                }
            }
            // The session had been unloaded under us: the prompt loaded it; follow it again.
            if unloaded {
                let s = rc.subscribe(&id, Some(since)).await?;
                return Ok(Some(Msg::Resubscribed(id, s.with_replay_boundary())));
            }
            Ok(None)
        });
    }

    fn configure(&mut self, patch: OverridesPatch) {
        let Some(id) = self.session_id() else { return };
        let rc = self.rc.clone();
        self.spawn(async move {
            rc.client().await?.configure(&id, patch).await?;
            Ok(None)
        });
    }

    fn take_over(&mut self) {
        let Some(a) = self.attach() else { return };
        let id = a.st.info.session_id.clone();
        a.st.watch = false;
        let rc = self.rc.clone();
        self.spawn(async move {
            let info = rc
                .client()
                .await?
                .load_session(&id, true, false)
                .await?
                .session;
            Ok(Some(Msg::Info(Box::new(info))))
        });
    }

    fn command(&mut self, c: Command) {
        let Some(a) = self.attach() else { return };
        let owner_only = !matches!(
            c,
            Command::Sessions | Command::Detach | Command::Help | Command::TakeOver | Command::New
        );
        if owner_only && a.st.read_only() {
            a.st.error("read-only: that needs the session (/take-over)");
            return;
        }
        match c {
            Command::Model(m) => self.configure(OverridesPatch {
                model: Patch::Set(m),
                ..Default::default()
            }),
            Command::Provider(p) => self.configure(OverridesPatch {
                model_provider: Patch::Set(p),
                ..Default::default()
            }),
            Command::Temperature(t) => self.configure(OverridesPatch {
                temperature: Patch::Set(t),
                ..Default::default()
            }),
            Command::Title(t) => {
                let id = a.st.info.session_id.clone();
                let rc = self.rc.clone();
                self.spawn(async move {
                    let info = rc.client().await?.rename(&id, &t).await?;
                    Ok(Some(Msg::Info(Box::new(info))))
                });
            }
            Command::Upload(path) => {
                let id = a.st.info.session_id.clone();
                let rc = self.rc.clone();
                self.spawn(async move {
                    let p = std::path::absolute(&path)?;
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "upload".into());
                    let entry = rc.client().await?.upload_path(&id, name, &p).await?;
                    Ok(Some(Msg::Uploaded(entry)))
                });
            }
            Command::Interrupt(t) => self.prompt(t, true),
            Command::Cancel => self.cancel_turn(),
            Command::New => {
                let p = NewSessionParams {
                    agent: Some(a.st.info.agent.clone()),
                    mode: Some(a.st.info.mode),
                    cwd: self.cwd.clone(),
                    ..Default::default()
                };
                self.create(p);
            }
            Command::Sessions => self.open_picker(),
            Command::TakeOver => {
                if a.st.info.owner_tui_id.as_ref() == Some(&a.st.me) {
                    a.st.watch = false;
                    a.st.notice("you own this session already");
                } else {
                    a.confirm = Some(Confirm::TakeOver);
                }
            }
            Command::Detach => self.exit = Some(Exit::Detached),
            Command::Help => a.st.notice(commands::HELP),
        }
    }

    fn picker_key(&mut self, k: KeyEvent) {
        let Screen::Picker(p) = &mut self.screen else {
            return;
        };
        if let Some(ask) = p.ask.as_mut() {
            match ask {
                Ask::Delete(id) => {
                    let id = id.clone();
                    p.ask = None;
                    if k.code == KeyCode::Char('y') {
                        let rc = self.rc.clone();
                        self.spawn(async move {
                            rc.client().await?.delete_session(&id).await?;
                            Ok(Some(Msg::Notice("deleted".into())))
                        });
                    }
                }
                Ask::Rename(id, input) => match k.code {
                    KeyCode::Esc => p.ask = None,
                    KeyCode::Enter => {
                        let (id, title) = (id.clone(), input.text.clone());
                        p.ask = None;
                        let rc = self.rc.clone();
                        self.spawn(async move {
                            let info = rc.client().await?.rename(&id, &title).await?;
                            Ok(Some(Msg::Info(Box::new(info))))
                        });
                    }
                    KeyCode::Backspace => input.backspace(),
                    KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                        input.insert(c)
                    }
                    _ => {}
                },
                Ask::New {
                    agents,
                    agent,
                    mode,
                } => match k.code {
                    KeyCode::Esc => p.ask = None,
                    KeyCode::Up => *agent = agent.saturating_sub(1),
                    KeyCode::Down => *agent = (*agent + 1).min(agents.len().saturating_sub(1)),
                    KeyCode::Tab => {
                        *mode = match mode {
                            Mode::Chat => Mode::Code,
                            Mode::Code => Mode::Chat,
                        }
                    }
                    KeyCode::Enter => {
                        let params = NewSessionParams {
                            agent: agents.get(*agent).cloned(),
                            mode: Some(*mode),
                            cwd: self.cwd.clone(),
                            ..Default::default()
                        };
                        self.create(params);
                    }
                    _ => {}
                },
            }
            return;
        }
        if ctrl(&k, 'd') || k.code == KeyCode::Esc {
            // Back to the session the picker was opened from, else leave.
            match self.back.take() {
                Some(a) => self.screen = Screen::Attach(a),
                None => self.exit = Some(Exit::Detached),
            }
            return;
        }
        let how = |watch| How {
            watch,
            take_over: false,
        };
        if ctrl(&k, 'w') {
            if let Some(s) = p.current() {
                let id = s.session_id.clone();
                self.start_attach(id, how(true));
            }
            return;
        }
        if ctrl(&k, 'x') {
            if let Some(s) = p.current() {
                p.ask = Some(Ask::Delete(s.session_id.clone()));
            }
            return;
        }
        if ctrl(&k, 'r') {
            if let Some(s) = p.current() {
                let mut input = super::input::Input::default();
                input.insert_str(s.title.as_deref().unwrap_or(""));
                p.ask = Some(Ask::Rename(s.session_id.clone(), input));
            }
            return;
        }
        if ctrl(&k, 'n') {
            let rc = self.rc.clone();
            self.spawn(async move {
                let agents = rc.client().await?.agents().await?.agents;
                let mut names: Vec<(bool, String)> =
                    agents.into_iter().map(|a| (!a.default, a.alias)).collect();
                names.sort();
                Ok(Some(Msg::Agents(
                    names.into_iter().map(|(_, n)| n).collect(),
                )))
            });
            return;
        }
        match k.code {
            KeyCode::Up => p.up(),
            KeyCode::Down => p.down(),
            KeyCode::Backspace => p.backspace(),
            KeyCode::Enter => {
                if let Some(s) = p.current() {
                    let id = s.session_id.clone();
                    self.start_attach(id, how(false));
                }
            }
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => p.type_char(c),
            _ => {}
        }
    }
}

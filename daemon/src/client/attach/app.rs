//! The TUI's event loop: terminal input, the session's events, the daemon feed and
//! the results of calls made in the background come in; state is updated and the
//! screen drawn. Calls never block the loop (a reconnect may be under way).

use super::dialog::{ConfirmView, Dialog, DialogView};
use super::input::{Input, InputBox};
use super::picker::{Picker, PickerView};
use super::session::{self, How};
use super::state::{Attached, Link};
use super::status::StatusLine;
use super::theme::Theme;
use super::transcript::{TranscriptView, View};
use super::Exit;
use crossterm::event::{Event as TermEvent, EventStream as TermEvents};
use futures::{Stream, StreamExt};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::Frame;
use sessiond_client::protocol::params::{MessagesResult, NewSessionParams};
use sessiond_client::{FeedStream, ReconnectingClient, ResumingEventStream};
use sessiond_protocol::{DaemonUpdate, SessionId, SessionInfo, TuiId, UploadEntry};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What a background call reports back.
pub enum Msg {
    Notice(String),
    Error(String),
    Attached(Box<(Attached, ResumingEventStream)>),
    AttachFailed(String),
    Sessions(Vec<SessionInfo>),
    Agents(Vec<String>),
    Info(Box<SessionInfo>),
    Uploaded(UploadEntry),
    Reloaded(MessagesResult),
    Feed(FeedStream),
    /// A new subscription for the attached session, continuing after its last seq.
    Resubscribed(SessionId, ResumingEventStream),
}

/// A yes/no question of the attach screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    TakeOver,
}

/// The attach screen: state from the reducer plus what only the view needs.
pub struct AttachScreen {
    pub st: Attached,
    pub view: View,
    pub input: Input,
    pub dialog: Option<Dialog>,
    pub confirm: Option<Confirm>,
    /// Uploads to attach to the next prompt.
    pub attachments: Vec<UploadEntry>,
    pub events: Option<ResumingEventStream>,
    /// When Ctrl-C last cleared the input (a second one within 2 s detaches).
    pub last_ctrl_c: Option<Instant>,
    pub reloading: bool,
    /// A resubscribe is under way (the stream ended without `session_closed`).
    pub resubscribing: bool,
    /// The session was closed or evicted: the next prompt loads and follows it again.
    pub unloaded: bool,
}

pub enum Screen {
    Attach(Box<AttachScreen>),
    Picker(Picker),
    /// Waiting for an attach or a listing.
    Loading(String),
}

/// The loop's state.
pub struct App {
    pub rc: ReconnectingClient,
    pub me: TuiId,
    pub theme: Theme,
    pub screen: Screen,
    pub tx: mpsc::UnboundedSender<Msg>,
    pub feed: Option<FeedStream>,
    feed_pending: bool,
    /// Set when the loop should end.
    pub exit: Option<Exit>,
    /// Where `/new` and the picker take their defaults from.
    pub cwd: Option<String>,
    /// The attach screen `/sessions` left, for the picker's Esc to go back to.
    pub back: Option<Box<AttachScreen>>,
    /// The picker an attach was started from, to go back to if it fails.
    pub picker_on_failure: Option<Picker>,
}

async fn next_of<S: Stream + Unpin>(s: &mut Option<S>) -> Option<S::Item> {
    match s {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

impl App {
    pub fn new(
        rc: ReconnectingClient,
        me: TuiId,
        theme: Theme,
        tx: mpsc::UnboundedSender<Msg>,
        cwd: Option<String>,
    ) -> App {
        App {
            rc,
            me,
            theme,
            screen: Screen::Loading("connecting".into()),
            tx,
            feed: None,
            feed_pending: false,
            exit: None,
            cwd,
            back: None,
            picker_on_failure: None,
        }
    }

    /// Runs `f` in the background; its error becomes a notice on the screen.
    pub fn spawn<F>(&self, f: F)
    where
        F: std::future::Future<Output = anyhow::Result<Option<Msg>>> + Send + 'static,
    {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            match f.await {
                Ok(Some(m)) => {
                    let _ = tx.send(m);
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = tx.send(Msg::Error(format!("{e:#}")));
                }
            }
        });
    }

    /// Attaches to `id` in the background.
    pub fn start_attach(&mut self, id: SessionId, how: How) {
        self.back = None;
        let left = std::mem::replace(
            &mut self.screen,
            Screen::Loading(format!("attaching to {}", id.as_str())),
        );
        self.picker_on_failure = match left {
            Screen::Picker(p) => Some(p),
            _ => None,
        };
        let rc = self.rc.clone();
        let me = self.me.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let m = match session::attach(&rc, &me, &id, how).await {
                Ok(r) => Msg::Attached(Box::new(r)),
                Err(e) => Msg::AttachFailed(format!("{e:#}")),
            };
            let _ = tx.send(m);
        });
    }

    /// Opens the picker (listing in the background).
    pub fn open_picker(&mut self) {
        let left = std::mem::replace(&mut self.screen, Screen::Loading("listing sessions".into()));
        if let Screen::Attach(a) = left {
            self.back = Some(a);
        }
        let rc = self.rc.clone();
        self.spawn(async move {
            let c = rc.client().await?;
            Ok(Some(Msg::Sessions(session::all_sessions(&c).await?)))
        });
    }

    /// Creates a session and attaches to it.
    pub fn create(&mut self, p: NewSessionParams) {
        self.back = None;
        let left = std::mem::replace(
            &mut self.screen,
            Screen::Loading("creating a session".into()),
        );
        self.picker_on_failure = match left {
            Screen::Picker(p) => Some(p),
            _ => None,
        };
        let rc = self.rc.clone();
        let me = self.me.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let r = async {
                let c = rc.client().await?;
                let id = c.new_session(p).await?.session.session_id;
                session::attach(&rc, &me, &id, How::default()).await
            };
            let m = match r.await {
                Ok(r) => Msg::Attached(Box::new(r)),
                Err(e) => Msg::AttachFailed(format!("{e:#}")),
            };
            let _ = tx.send(m);
        });
    }

    fn ensure_feed(&mut self) {
        if self.feed.is_some() || self.feed_pending || !self.rc.is_connected() {
            return;
        }
        self.feed_pending = true;
        let rc = self.rc.clone();
        self.spawn(async move {
            let c = rc.client().await?;
            Ok(Some(Msg::Feed(c.subscribe_daemon().await?)))
        });
    }

    /// Runs until detach or exit.
    pub async fn run<B: ratatui::backend::Backend>(
        &mut self,
        term: &mut ratatui::Terminal<B>,
        mut rx: mpsc::UnboundedReceiver<Msg>,
    ) -> anyhow::Result<Exit> {
        let mut keys = TermEvents::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            self.ensure_feed();
            term.draw(|f| self.draw(f))?;
            if let Some(exit) = self.exit.take() {
                return Ok(exit);
            }
            let mut events = match &mut self.screen {
                Screen::Attach(a) => a.events.take(),
                _ => None,
            };
            tokio::select! {
                k = keys.next() => match k {
                    Some(Ok(TermEvent::Key(k))) => self.on_key(k),
                    Some(Ok(TermEvent::Mouse(m))) => self.on_mouse(m),
                    Some(Ok(TermEvent::Paste(s))) => self.on_paste(&s),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(Exit::Detached),
                },
                ev = next_of(&mut events) => {
                    match ev {
                        Some(Ok(env)) => self.on_event(&env),
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "event stream error");
                            if let Screen::Attach(a) = &mut self.screen {
                                a.st.link = Link::Reconnecting;
                            }
                        }
                        None => {
                            events = None;
                            self.resubscribe();
                        }
                    }
                },
                u = next_of(&mut self.feed) => match u {
                    Some(Ok(u)) => self.on_update(u),
                    Some(Err(_)) | None => self.feed = None,
                },
                Some(m) = rx.recv() => self.on_msg(m),
                _ = tick.tick() => self.on_tick(),
            }
            if let Screen::Attach(a) = &mut self.screen {
                if a.events.is_none() {
                    a.events = events;
                }
            }
        }
    }

    /// Follows the attached session again from its last seq, keeping the screen
    /// (after the stream ended without `session_closed`, or to follow a session that
    /// was unloaded and is loaded again).
    pub fn resubscribe(&mut self) {
        let Screen::Attach(a) = &mut self.screen else {
            return;
        };
        if a.resubscribing || a.unloaded || a.st.closed.is_some() {
            return;
        }
        a.resubscribing = true;
        let rc = self.rc.clone();
        let id = a.st.info.session_id.clone();
        let since = a.st.last_seq;
        self.spawn(async move {
            let mut delay = Duration::from_millis(50);
            loop {
                match rc.subscribe(&id, Some(since)).await {
                    Ok(s) => return Ok(Some(Msg::Resubscribed(id, s.with_replay_boundary()))),
                    Err(e) if e.is_disconnect() || e.code().is_none() => {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        });
    }

    fn on_tick(&mut self) {
        let connected = self.rc.is_connected();
        if let Screen::Attach(a) = &mut self.screen {
            let link = if connected {
                Link::Connected
            } else {
                Link::Reconnecting
            };
            if a.st.link == Link::Reconnecting && link == Link::Connected {
                let rc = self.rc.clone();
                let id = a.st.info.session_id.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if let Ok(c) = rc.client().await {
                        if let Ok(info) = c.get_session(&id).await {
                            let _ = tx.send(Msg::Info(Box::new(info)));
                        }
                    }
                });
            }
            a.st.link = link;
        }
    }

    pub fn notice_error(&mut self, text: String) {
        match &mut self.screen {
            Screen::Attach(a) => a.st.error(text),
            Screen::Picker(p) => p.message = Some(text),
            Screen::Loading(_) => {}
        }
    }

    fn on_msg(&mut self, m: Msg) {
        match m {
            Msg::Notice(t) => match &mut self.screen {
                Screen::Attach(a) => a.st.notice(t),
                Screen::Picker(p) => p.message = Some(t),
                Screen::Loading(_) => {}
            },
            Msg::Error(t) => {
                if matches!(self.screen, Screen::Loading(_)) {
                    self.exit = Some(Exit::Failed(t));
                } else {
                    self.notice_error(t);
                }
            }
            Msg::Attached(b) => {
                self.picker_on_failure = None;
                let (st, events) = *b;
                let mut a = AttachScreen::new(st);
                a.events = Some(events);
                a.sync_dialog();
                self.screen = Screen::Attach(Box::new(a));
            }
            Msg::AttachFailed(t) => match self.picker_on_failure.take() {
                // Attaching from the picker: back to it, saying why.
                Some(mut p) => {
                    p.message = Some(t);
                    self.screen = Screen::Picker(p);
                }
                None => self.exit = Some(Exit::Failed(t)),
            },
            Msg::Sessions(list) => {
                self.screen = Screen::Picker(Picker::new(self.me.clone(), list));
            }
            Msg::Agents(agents) => {
                if let Screen::Picker(p) = &mut self.screen {
                    p.ask = Some(super::picker::Ask::New {
                        agents,
                        agent: 0,
                        mode: sessiond_protocol::Mode::Chat,
                    });
                }
            }
            Msg::Info(info) => self.on_update(DaemonUpdate::SessionChanged { session: info }),
            Msg::Uploaded(e) => {
                if let Screen::Attach(a) = &mut self.screen {
                    a.st.notice(format!(
                        "{} attached to the next prompt",
                        if e.name.is_empty() {
                            &e.marker
                        } else {
                            &e.name
                        }
                    ));
                    a.attachments.push(e);
                }
            }
            Msg::Reloaded(snap) => {
                if let Screen::Attach(a) = &mut self.screen {
                    a.st.load_snapshot(&snap);
                    a.st.notice("transcript reloaded (resync)");
                    a.reloading = false;
                }
            }
            Msg::Feed(f) => {
                self.feed = Some(f);
                self.feed_pending = false;
            }
            Msg::Resubscribed(id, s) => {
                if let Screen::Attach(a) = &mut self.screen {
                    if a.st.info.session_id == id {
                        a.events = Some(s);
                        a.resubscribing = false;
                    }
                }
            }
        }
    }

    fn on_update(&mut self, u: DaemonUpdate) {
        match &mut self.screen {
            Screen::Picker(p) => match u {
                DaemonUpdate::SessionChanged { session } => p.upsert(*session),
                DaemonUpdate::SessionDeleted { session_id } => p.remove(&session_id),
            },
            Screen::Attach(a) => match u {
                DaemonUpdate::SessionChanged { session }
                    if session.session_id == a.st.info.session_id =>
                {
                    a.st.set_info(*session)
                }
                DaemonUpdate::SessionDeleted { session_id }
                    if session_id == a.st.info.session_id =>
                {
                    self.exit = Some(Exit::Closed(sessiond_protocol::CloseReason::Deleted));
                }
                _ => {}
            },
            Screen::Loading(_) => {}
        }
    }

    fn on_event(&mut self, env: &sessiond_protocol::EventEnvelope) {
        let Screen::Attach(a) = &mut self.screen else {
            return;
        };
        a.st.apply(env);
        a.sync_dialog();
        if let Some(reason) = a.st.closed {
            use sessiond_protocol::CloseReason::*;
            match reason {
                Killed | Deleted | Expired => self.exit = Some(Exit::Closed(reason)),
                Closed | Evicted => {
                    a.st.notice(format!(
                        "the session was unloaded ({}); it stays readable, and a prompt loads it again",
                        super::status::close_word(reason)
                    ));
                    // Not closed for good: a later prompt follows it again.
                    a.st.closed = None;
                    a.unloaded = true;
                }
            }
        }
        if a.st.needs_reload && !a.reloading {
            a.reloading = true;
            let rc = self.rc.clone();
            let id = a.st.info.session_id.clone();
            self.spawn(async move {
                let c = rc.client().await?;
                Ok(Some(Msg::Reloaded(session::snapshot(&c, &id).await?)))
            });
        }
    }

    fn draw(&self, f: &mut Frame) {
        let area = f.area();
        match &self.screen {
            Screen::Loading(what) => {
                f.render_widget(ratatui::widgets::Paragraph::new(format!(" {what}…")), area);
            }
            Screen::Picker(p) => f.render_widget(
                PickerView {
                    picker: p,
                    theme: &self.theme,
                },
                area,
            ),
            Screen::Attach(a) => draw_attach(f, area, a, &self.theme, Instant::now()),
        }
    }
}

impl AttachScreen {
    pub fn new(st: Attached) -> AttachScreen {
        AttachScreen {
            st,
            view: View::default(),
            input: Input::default(),
            dialog: None,
            confirm: None,
            attachments: Vec::new(),
            events: None,
            last_ctrl_c: None,
            reloading: false,
            resubscribing: false,
            unloaded: false,
        }
    }

    /// Shows the first pending request as a dialog (the owner only).
    pub fn sync_dialog(&mut self) {
        if self.st.read_only() {
            self.dialog = None;
            return;
        }
        let first = self.st.requests.first();
        let same = match (&self.dialog, first) {
            (Some(d), Some(r)) => d.request.request_id == r.request_id,
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.dialog = first.cloned().map(Dialog::new);
        }
    }
}

/// Draws the attach screen into `area` (also used by the view tests).
pub fn draw_attach(f: &mut Frame, area: Rect, a: &AttachScreen, theme: &Theme, now: Instant) {
    let input_h = InputBox::height(&a.input);
    let [status, body, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(input_h),
    ])
    .areas(area);
    f.render_widget(
        StatusLine {
            state: &a.st,
            theme,
            now,
        },
        status,
    );
    f.render_widget(
        TranscriptView {
            state: &a.st,
            view: &a.view,
            theme,
        },
        body,
    );
    let mut title = if a.st.read_only() {
        " read-only ".to_owned()
    } else {
        " prompt (Enter send · Alt-Enter newline · Ctrl-D detach · /help) ".to_owned()
    };
    if !a.attachments.is_empty() {
        title = format!(" prompt + {} attachment(s) ", a.attachments.len());
    }
    f.render_widget(
        InputBox {
            input: &a.input,
            title,
            theme,
            disabled: a.st.read_only(),
        },
        input,
    );
    if let Some(d) = &a.dialog {
        f.render_widget(
            DialogView {
                dialog: d,
                theme,
                more: a.st.requests.len().saturating_sub(1),
            },
            body,
        );
    } else if let Some(Confirm::TakeOver) = &a.confirm {
        let text = format!(
            "Take this session over from {}? Its screen turns read-only.",
            a.st.owner_words()
        );
        f.render_widget(ConfirmView { text: &text, theme }, body);
    } else {
        let (row, col) = a.input.cursor_pos();
        let inner_h = input.height.saturating_sub(2);
        let row = row.min(inner_h.saturating_sub(1));
        f.set_cursor_position((input.x + 1 + col, input.y + 1 + row));
    }
}

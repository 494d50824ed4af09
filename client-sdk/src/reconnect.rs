//! [`ReconnectingClient`]: a TUI connection that survives dropped connections and
//! daemon restarts. When the connection drops it dials again with backoff, repeats
//! `initialize` with the same identity (so the TUI still owns its sessions), and its
//! [`ResumingEventStream`]s subscribe again from the last `seq` they yielded.

use crate::backoff::ReconnectOptions;
use crate::client::{Client, Identity};
use crate::connect::{ConnectOptions, Endpoint};
use crate::error::{Error, Result};
use crate::resume::ResumingEventStream;
use sessiond_protocol::codes;
use sessiond_protocol::params::ClientInfo;
use sessiond_protocol::SessionId;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The state of the link, as the supervisor publishes it.
#[derive(Clone)]
struct Link {
    /// 1 for the first connection, one more for each reconnect.
    generation: u64,
    /// The current connection; `None` while reconnecting or after giving up.
    client: Option<Client>,
    /// Why the supervisor gave up, once it has.
    failed: Option<String>,
}

/// Aborts the supervisor when the last handle is dropped.
struct Supervisor(JoinHandle<()>);

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Shared {
    link: watch::Receiver<Link>,
    identity: Identity,
    opts: ConnectOptions,
    _supervisor: Supervisor,
}

/// A TUI connection that reconnects by itself.
///
/// Cheap to clone: clones share the link. Calls go through [`client`], which hands out
/// the current connection (waiting, up to `call_timeout`, while a reconnect is under
/// way). A call cut off by a drop fails with [`Error::Closed`] or
/// [`Error::Transport`] ([`Error::is_disconnect`]); whether to repeat it is the
/// caller's choice, because a prompt, for one, is not idempotent.
///
/// Event streams from [`subscribe`] survive drops: after a reconnect they subscribe
/// again with `since_seq` = the last `seq` they yielded and drop anything already
/// yielded, so the consumer sees each event once, in order. [`generation`] and
/// [`next_reconnect`] tell a TUI that a reconnect happened (e.g. to refresh a
/// session list).
///
/// [`client`]: ReconnectingClient::client
/// [`subscribe`]: ReconnectingClient::subscribe
/// [`generation`]: ReconnectingClient::generation
/// [`next_reconnect`]: ReconnectingClient::next_reconnect
#[derive(Clone)]
pub struct ReconnectingClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let link = self.shared.link.borrow();
        f.debug_struct("ReconnectingClient")
            .field("tui_id", &self.shared.identity.tui_id)
            .field("generation", &link.generation)
            .field("connected", &link.client.is_some())
            .field("failed", &link.failed)
            .finish()
    }
}

impl ReconnectingClient {
    /// Connects and initializes as `client` (a new TUI, or `identity` again). This first
    /// connect is not retried: its error is returned. After it, drops are handled by
    /// reconnecting under `policy`.
    pub async fn connect(
        endpoint: Endpoint,
        opts: ConnectOptions,
        policy: ReconnectOptions,
        client: ClientInfo,
        identity: Option<Identity>,
    ) -> Result<ReconnectingClient> {
        let first = Client::connect(endpoint.clone(), opts.clone()).await?;
        let init = first.initialize_with(client.clone(), identity).await?;
        let identity = Identity {
            tui_id: init.tui_id,
            tui_sig: init.tui_sig,
        };
        let (tx, rx) = watch::channel(Link {
            generation: 1,
            client: Some(first),
            failed: None,
        });
        let dial = Dial {
            endpoint,
            opts: opts.clone(),
            policy,
            client,
            identity: identity.clone(),
        };
        let task = tokio::spawn(supervise(tx, dial));
        Ok(ReconnectingClient {
            shared: Arc::new(Shared {
                link: rx,
                identity,
                opts,
                _supervisor: Supervisor(task),
            }),
        })
    }

    /// [`ReconnectingClient::connect`] to a Unix socket with default options and
    /// policy, as a TUI named `name`.
    pub async fn connect_unix(
        path: impl AsRef<std::path::Path>,
        name: &str,
        identity: Option<Identity>,
    ) -> Result<ReconnectingClient> {
        ReconnectingClient::connect(
            Endpoint::unix(path),
            ConnectOptions::default(),
            ReconnectOptions::default(),
            ClientInfo {
                name: name.to_owned(),
                version: None,
            },
            identity,
        )
        .await
    }

    /// The identity this client presents at every (re)connect.
    pub fn identity(&self) -> &Identity {
        &self.shared.identity
    }

    /// 1 for the first connection, one more after each successful reconnect.
    pub fn generation(&self) -> u64 {
        self.shared.link.borrow().generation
    }

    /// True while a connection is up (false while reconnecting and after giving up).
    pub fn is_connected(&self) -> bool {
        self.shared
            .link
            .borrow()
            .client
            .as_ref()
            .is_some_and(Client::is_connected)
    }

    /// Waits for the next successful reconnect and returns its generation; fails with
    /// [`Error::ReconnectFailed`] if the client gives up instead.
    pub async fn next_reconnect(&self) -> Result<u64> {
        let after = self.generation();
        self.connected_from(after + 1).await.map(|(_, g)| g)
    }

    /// The current connection, for calls. While a reconnect is under way this waits
    /// for it, up to `call_timeout` ([`Error::Timeout`]).
    pub async fn client(&self) -> Result<Client> {
        let wait = self.connected_from(0);
        match tokio::time::timeout(self.shared.opts.call_timeout, wait).await {
            Ok(r) => r.map(|(c, _)| c),
            Err(_) => Err(Error::Timeout),
        }
    }

    /// `session/subscribe` with a stream that resumes across reconnects (see
    /// [`ResumingEventStream`]).
    pub async fn subscribe(
        &self,
        session_id: &SessionId,
        since_seq: Option<u64>,
    ) -> Result<ResumingEventStream> {
        let client = self.client().await?;
        let generation = self.generation();
        let first = client.subscribe(session_id, since_seq).await?;
        Ok(ResumingEventStream::new(
            self.clone(),
            first,
            generation,
            since_seq,
        ))
    }

    /// A live connection whose generation is at least `min` (waiting as long as it
    /// takes), with its generation.
    pub(crate) async fn connected_from(&self, min: u64) -> Result<(Client, u64)> {
        let mut rx = self.shared.link.clone();
        loop {
            {
                let link = rx.borrow_and_update();
                if let Some(why) = &link.failed {
                    return Err(Error::ReconnectFailed(why.clone()));
                }
                if link.generation >= min {
                    if let Some(c) = link.client.as_ref().filter(|c| c.is_connected()) {
                        return Ok((c.clone(), link.generation));
                    }
                }
            }
            if rx.changed().await.is_err() {
                return Err(Error::ReconnectFailed("the client was shut down".into()));
            }
        }
    }
}

/// What the supervisor needs to dial again.
struct Dial {
    endpoint: Endpoint,
    opts: ConnectOptions,
    policy: ReconnectOptions,
    client: ClientInfo,
    identity: Identity,
}

impl Dial {
    async fn once(&self) -> Result<Client> {
        let c = Client::connect(self.endpoint.clone(), self.opts.clone()).await?;
        c.initialize_with(self.client.clone(), Some(self.identity.clone()))
            .await?;
        Ok(c)
    }
}

/// Errors after which dialing again cannot help.
fn is_fatal(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(codes::INVALID_TUI_SIGNATURE | codes::UNSUPPORTED_PROTOCOL)
    ) || matches!(e, Error::InvalidInput(_))
}

/// Watches the connection; when it drops, dials again under the policy.
async fn supervise(tx: watch::Sender<Link>, dial: Dial) {
    loop {
        let Some(current) = tx.borrow().client.clone() else {
            return;
        };
        current.closed().await;
        drop(current);
        tx.send_modify(|l| l.client = None);
        tracing::debug!(endpoint = %dial.endpoint, "connection lost; reconnecting");
        let mut failed = 0u32;
        loop {
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(dial.policy.delay(failed)).await;
            match dial.once().await {
                Ok(c) => {
                    tx.send_modify(|l| {
                        l.generation += 1;
                        l.client = Some(c);
                    });
                    tracing::debug!(endpoint = %dial.endpoint, "reconnected");
                    break;
                }
                Err(e) => {
                    failed += 1;
                    if is_fatal(&e) || dial.policy.exhausted(failed) {
                        let why = format!("gave up after {failed} attempt(s): {e}");
                        tracing::warn!(endpoint = %dial.endpoint, "{why}");
                        tx.send_modify(|l| l.failed = Some(why));
                        return;
                    }
                    tracing::debug!(endpoint = %dial.endpoint, attempt = failed, "reconnect failed: {e}");
                }
            }
        }
    }
}

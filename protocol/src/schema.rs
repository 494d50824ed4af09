//! The machine-readable contract: a JSON Schema for every wire type (derived with
//! schemars) and an OpenRPC document for every method, for clients in other
//! languages. `rpc.discover` returns [`openrpc`]; `sessiond schema` prints it; the
//! checked-in copies under `protocol/schema/` are compared in a test.

use crate::events::EventEnvelope;
use crate::methods as m;
use crate::params::*;
use crate::types::{SessionInfo, UploadEntry};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// One method: its name, summary, params object type and result type.
struct Method {
    name: &'static str,
    summary: &'static str,
    params: Option<fn(&mut SchemaGenerator) -> Value>,
    result: fn(&mut SchemaGenerator) -> Value,
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
    g.subschema_for::<T>().to_value()
}

fn subscription_id(_: &mut SchemaGenerator) -> Value {
    json!({"description": "subscription id", "type": ["string", "integer"]})
}

fn unsubscribed(_: &mut SchemaGenerator) -> Value {
    json!({"type": "boolean"})
}

fn openrpc_doc(_: &mut SchemaGenerator) -> Value {
    json!({"description": "this OpenRPC document", "type": "object"})
}

fn methods() -> Vec<Method> {
    macro_rules! method {
        ($name:expr, $summary:expr, $params:ty, $result:ty) => {
            Method {
                name: $name,
                summary: $summary,
                params: Some(schema::<$params>),
                result: schema::<$result>,
            }
        };
        ($name:expr, $summary:expr, -, $result:ty) => {
            Method {
                name: $name,
                summary: $summary,
                params: None,
                result: schema::<$result>,
            }
        };
    }
    vec![
        method!(m::INITIALIZE, "make this connection a TUI connection", InitializeParams, InitializeResult),
        method!(m::DAEMON_STATUS, "the daemon's status (open to all)", -, DaemonStatus),
        method!(m::DAEMON_AGENTS, "the configured agents (open to all, never a secret)", -, AgentsResult),
        method!(m::SESSION_NEW, "create a session", NewSessionParams, SessionResult),
        method!(m::SESSION_LOAD, "load a session (take_over moves ownership)", LoadSessionParams, SessionResult),
        method!(m::SESSION_LIST, "list sessions, newest updated_at first", ListParams, ListResult),
        method!(m::SESSION_GET, "one session", SessionIdParams, SessionInfo),
        method!(m::SESSION_MESSAGES, "a page of the transcript", MessagesParams, MessagesResult),
        method!(m::SESSION_CONFIGURE, "change overrides (null clears)", ConfigureParams, ConfigureResult),
        method!(m::SESSION_CLOSE, "unload a session", SessionIdParams, CloseResult),
        method!(m::SESSION_DELETE, "delete a session and its transcript", SessionIdParams, DeleteResult),
        method!(m::SESSION_RENAME, "set a session's title (owner only)", RenameParams, SessionInfo),
        Method {
            name: m::SESSION_SUBSCRIBE,
            summary: "subscribe to a session's events (WebSocket only); notifications are session/update with an EventEnvelope",
            params: Some(schema::<SubscribeParams>),
            result: subscription_id,
        },
        Method {
            name: m::SESSION_UNSUBSCRIBE,
            summary: "end a subscription",
            params: None,
            result: unsubscribed,
        },
        Method {
            name: m::DAEMON_SUBSCRIBE,
            summary: "subscribe to the daemon-wide session feed (WebSocket only); notifications are daemon/update with a DaemonUpdate",
            params: None,
            result: subscription_id,
        },
        Method {
            name: m::DAEMON_UNSUBSCRIBE,
            summary: "end a feed subscription",
            params: None,
            result: unsubscribed,
        },
        method!(m::SESSION_PROMPT, "send a prompt (wait: true answers with the verdict)", PromptParams, PromptResult),
        method!(m::SESSION_CANCEL, "cancel the running turn", SessionIdParams, CancelResult),
        method!(m::SESSION_RESPOND, "answer a request of the agent", RespondParams, RespondResult),
        method!(m::SESSION_UPLOAD, "upload a file (data_b64 or path)", UploadParams, UploadEntry),
        method!(m::SESSION_UPLOADS, "a session's uploads", SessionIdParams, UploadsResult),
        method!(m::ADMIN_KILL, "kill a session for good (unix socket only)", SessionIdParams, KillResult),
        method!(m::ADMIN_SESSIONS, "as session/list, every owner (unix socket only)", ListParams, ListResult),
        method!(m::ADMIN_STATS, "daemon counters (unix socket only)", -, StatsResult),
        method!(m::ADMIN_TUIS, "connected TUIs (unix socket only)", -, TuisResult),
        method!(m::ADMIN_SHUTDOWN, "stop gracefully (unix socket only)", ShutdownParams, OkResult),
        method!(m::ADMIN_RELOAD, "read the configuration file again (unix socket only)", -, ReloadResult),
        Method {
            name: m::RPC_DISCOVER,
            summary: "this OpenRPC document",
            params: None,
            result: openrpc_doc,
        },
    ]
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator()
}

/// The params of a method as OpenRPC content descriptors, from its params object.
fn params_of(schema: &Value, defs: &Map<String, Value>) -> Vec<Value> {
    let resolved = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| defs.get(name))
        .unwrap_or(schema);
    let required: Vec<&str> = resolved["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    resolved["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, s)| {
            json!({
                "name": name,
                "required": required.contains(&name.as_str()),
                "schema": s,
            })
        })
        .collect()
}

/// The OpenRPC document of every method, with every wire type in
/// `components.schemas`.
pub fn openrpc() -> Value {
    let mut g = generator();
    let mut methods_out = Vec::new();
    let list = methods();
    let mut raw = Vec::new();
    for method in &list {
        let params = method.params.map(|f| f(&mut g));
        let result = (method.result)(&mut g);
        raw.push((method, params, result));
    }
    // The notification payload is part of the contract too.
    let _ = g.subschema_for::<EventEnvelope>();
    let defs = g.take_definitions(true);
    for (method, params, result) in raw {
        let params = params.map(|p| params_of(&p, &defs)).unwrap_or_default();
        methods_out.push(json!({
            "name": method.name,
            "summary": method.summary,
            "paramStructure": "by-name",
            "params": params,
            "result": {"name": "result", "schema": result},
        }));
    }
    json!({
        "openrpc": "1.3.2",
        "info": {
            "title": "sessiond",
            "version": "1",
            "description": "JSON-RPC 2.0 over a Unix socket (WebSocket or plain HTTP POST) or a token-protected TCP WebSocket; see docs/protocol.md",
        },
        "methods": methods_out,
        "components": {"schemas": defs},
    })
}

/// A JSON Schema document with every wire type under `$defs`.
pub fn types() -> Value {
    let mut g = SchemaSettings::draft2020_12().into_generator();
    let _ = g.subschema_for::<EventEnvelope>();
    for method in methods() {
        if let Some(p) = method.params {
            p(&mut g);
        }
        (method.result)(&mut g);
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sessiond wire types",
        "$defs": g.take_definitions(true),
    })
}

//! The bare jsonrpsee server of the benches as a program of its own, for the peer race
//! (bench/peers): serves `daemon/status` returning `{"ok":true}` on the Unix socket
//! given as the only argument, the way the daemon serves, until killed.

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: bare_server SOCKET");
        return std::process::ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bare_server: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let mut module = jsonrpsee::RpcModule::new(());
        if let Err(e) =
            module.register_method("daemon/status", |_, _, _| serde_json::json!({"ok": true}))
        {
            eprintln!("bare_server: {e}");
            return std::process::ExitCode::FAILURE;
        }
        let handle = sessiond_tests::serve_bare_unix(std::path::Path::new(&path), module.into());
        handle.stopped().await;
        std::process::ExitCode::SUCCESS
    })
}

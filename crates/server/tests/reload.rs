//! `Server::reload` on a running server, as SIGHUP drives it: the per-application tables are replaced
//! at once, keys that need a restart are reported and left as they were.

use rtmpx::config::ReloadPlan;
use rtmpx::{Config, Server};

fn config(text: &str) -> Config {
    let mut config: Config = toml::from_str(text).unwrap();
    config.listen = vec!["127.0.0.1:0".parse().unwrap()];
    config.listen_tls = vec![];
    config.listen_http = vec![];
    config
}

#[tokio::test]
async fn a_reload_swaps_the_app_tables_and_reports_what_needs_a_restart() {
    let started = config("[app.\"*\"]\n");
    let server = Server::start(&started).await.unwrap();
    let apps_before = server.apps().current();
    assert_eq!(server.apps().app("live").table.as_deref(), Some("*"));

    let plan = server.reload(&config("chunk_size = 8192\n[app.live]\n[app.\"*\"]\n"));
    assert_eq!(
        plan,
        ReloadPlan {
            apps_changed: true,
            reread_certificate: false,
            needs_restart: vec!["chunk_size"],
        }
    );
    assert_eq!(server.apps().app("live").table.as_deref(), Some("live"));
    assert_eq!(apps_before.app("live").table.as_deref(), Some("*"));

    // What was applied is now in force; what was not is still to be applied.
    let again = server.reload(&config("chunk_size = 8192\n[app.live]\n[app.\"*\"]\n"));
    assert!(!again.apps_changed);
    assert_eq!(again.needs_restart, ["chunk_size"]);

    server.shutdown(std::time::Duration::from_secs(1)).await;
}

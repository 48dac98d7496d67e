//! An axum service with CPU-heavy routes behind HelixRouter's tower layer, or one of
//! two baselines.
//!
//! ```text
//! cargo run --release --example service --features tower -- --addr 127.0.0.1:8080
//! cargo run --release --example service --features tower -- --baseline spawn_blocking
//! cargo run --release --example service --features tower -- --baseline tower-shed
//! cargo run --release --example service --features tower -- --baseline tower-shed-global
//! ```
//!
//! `scripts/service-bench.sh` drives all three modes open-loop.

mod app;

use app::Mode;
use helixrouter::{Router, RouterConfig};

fn usage() -> ! {
    eprintln!(
        "usage: service [--addr HOST:PORT] [--baseline spawn_blocking|tower-shed|tower-shed-global]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut addr = String::from("127.0.0.1:8080");
    let mut mode = Mode::Helix;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().unwrap_or_else(|| usage()),
            "--baseline" => {
                mode = args
                    .next()
                    .as_deref()
                    .and_then(Mode::parse)
                    .filter(|m| *m != Mode::Helix)
                    .unwrap_or_else(|| usage());
            }
            _ => usage(),
        }
    }
    let router = Router::new(RouterConfig::default());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("service ({mode:?}) listening on {}", listener.local_addr()?);
    axum::serve(listener, app::app(mode, router.clone()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    router.shutdown().await;
    Ok(())
}

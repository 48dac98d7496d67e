//! The example service (`examples/service`): argon2 and zstd round trips in each mode,
//! `/decompress` against decompression bombs, and the sizes `/compress` and
//! `/decompress` give the router.
#![cfg(all(feature = "server", feature = "tower"))]

#[path = "../examples/service/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use helixrouter::tower::Classify;
use helixrouter::{Router, RouterConfig};
use tower::ServiceExt;

/// The system allocator, remembering the largest single allocation (or reallocation)
/// this test binary made, so a test can show a bomb was refused without allocating its
/// content.
struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only records sizes.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// No allocation of this test binary may reach this: above argon2's 19 MiB (the `/hash`
/// route, possibly running in another test at the same time) and twice
/// [`app::MAX_DECOMPRESSED`], far below the bombs' content.
const ALLOCATION_CEILING: usize = 32 << 20;

/// Zero bytes per RLE block of [`rle_frame`] (zstd's largest block).
const RLE_BLOCK: usize = 128 << 10;

/// A valid zstd frame of `blocks` RLE blocks, each 4 bytes that stand for 128 KiB of
/// zeros: a decompression bomb of `blocks × 128 KiB` in `~4 × blocks` bytes. With
/// `declare` its header declares that size; without, it declares none.
fn rle_frame(blocks: usize, declare: bool) -> Vec<u8> {
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD]; // magic number
    // Frame header descriptor: an 8-byte content size or none; a window descriptor
    // follows either way (not "single segment"), so zstd's own window limit (128 MiB)
    // does not stop the bomb, as with frames the `zstd` tool makes of large inputs.
    frame.push(if declare { 0b1100_0000 } else { 0 });
    frame.push(7 << 3); // window 2^(10 + 7) = 128 KiB
    if declare {
        frame.extend_from_slice(&((blocks * RLE_BLOCK) as u64).to_le_bytes());
    }
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = last | (1 << 1) | ((RLE_BLOCK as u32) << 3); // last?, RLE, size
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0); // the byte repeated
    }
    frame
}

async fn send(svc: &axum::Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let res = svc.clone().oneshot(req).await.unwrap();
    let status = res.status();
    (
        status,
        to_bytes(res.into_body(), 1 << 24).await.unwrap().to_vec(),
    )
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path).body(body.into()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argon2_and_zstd_round_trip_in_every_mode() {
    let router = Router::new(RouterConfig::default());
    for mode in [
        app::Mode::Helix,
        app::Mode::SpawnBlocking,
        app::Mode::TowerShed,
        app::Mode::TowerShedGlobal,
    ] {
        let svc = app::app(mode, router.clone());

        let (status, body) = send(&svc, post("/hash", "correct horse battery staple")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{mode:?}: {}",
            String::from_utf8_lossy(&body)
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["verified"], true, "{mode:?}: {v}");
        assert!(v["hash"].as_str().unwrap().starts_with("$argon2id$"), "{v}");

        let text = "helixrouter ".repeat(1_000);
        let (status, body) = send(&svc, post("/compress", text.clone())).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["roundtrip"], true, "{v}");
        assert!(v["compressed"].as_u64().unwrap() < v["original"].as_u64().unwrap());

        let packed = packed_text(&text);
        let (status, body) = send(&svc, post("/decompress", packed)).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert_eq!(body, text.as_bytes());

        let (status, _) = send(&svc, post("/decompress", "not zstd")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let mut truncated = packed_text(&text);
        truncated.truncate(truncated.len() - 3);
        let (status, body) = send(&svc, post("/decompress", truncated)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mode:?}");
        assert!(String::from_utf8_lossy(&body).starts_with("not zstd"));

        let (status, body) = send(&svc, Request::get("/json").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(String::from_utf8_lossy(&body).contains("\"ok\":true"));
    }
    router.shutdown().await;
}

/// A frame compressed in one call: its header declares its content size.
fn packed_text(text: &str) -> Vec<u8> {
    zstd::bulk::compress(text.as_bytes(), 3).unwrap()
}

/// A frame compressed as a stream of unknown length (as `zstd::encode_all` and the
/// `zstd` command reading a pipe do): its header declares no size.
fn packed_without_size(raw: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_contentsize(false).unwrap();
    enc.write_all(raw).unwrap();
    enc.finish().unwrap()
}

#[test]
fn the_frames_header_tells_the_declared_size_before_anything_is_decompressed() {
    let text = "helixrouter ".repeat(1_000);
    let sized = app::declared_size(&packed_text(&text)).unwrap();
    assert_eq!((sized.bytes, sized.complete), (text.len() as u64, true));
    let unsized_ = app::declared_size(&packed_without_size(text.as_bytes())).unwrap();
    assert!(!unsized_.complete, "{unsized_:?}");
    let bomb = app::declared_size(&rle_frame(2_048, true)).unwrap();
    assert_eq!(bomb.bytes, 256 << 20);
    // Two frames: their declared sizes add up.
    let mut two = packed_text(&text);
    two.extend_from_slice(&rle_frame(4, true));
    let both = app::declared_size(&two).unwrap();
    assert_eq!(both.bytes, text.len() as u64 + 4 * RLE_BLOCK as u64);
    for bad in [&b""[..], b"not zstd", &packed_text(&text)[..5]] {
        assert!(app::declared_size(bad).is_err(), "{bad:?}");
    }
    let mut trailing = packed_text(&text);
    trailing.extend_from_slice(b"junk");
    assert!(app::declared_size(&trailing).is_err(), "trailing bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_frame_declaring_a_huge_content_is_refused_from_its_header() {
    let router = Router::new(RouterConfig::default());
    // The bomb is real: 2,048 RLE blocks, 8 KiB that decompress to 256 MiB.
    let small = rle_frame(4, true);
    let bomb = rle_frame(2_048, true);
    assert!(bomb.len() < 9 << 10, "{}", bomb.len());
    let mut behind_a_small_frame = small.clone();
    behind_a_small_frame.extend_from_slice(&bomb);
    // One block of 128 KiB whose header claims 1 TiB: refused on the claim alone.
    let mut liar = rle_frame(1, true);
    liar[6..14].copy_from_slice(&(1u64 << 40).to_le_bytes()); // after magic, FHD, window
    assert_eq!(app::declared_size(&liar).unwrap().bytes, 1 << 40);
    for mode in [app::Mode::Helix, app::Mode::SpawnBlocking] {
        let svc = app::app(mode, router.clone());
        // The frame builder makes frames zstd accepts.
        let (status, body) = send(&svc, post("/decompress", small.clone())).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert_eq!(body.len(), 4 * RLE_BLOCK);
        assert!(body.iter().all(|&b| b == 0));

        for frames in [&bomb, &behind_a_small_frame, &liar] {
            let (status, body) = send(&svc, post("/decompress", frames.clone())).await;
            let text = String::from_utf8_lossy(&body);
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{mode:?}: {text}");
            assert!(text.contains("declare"), "{text}");
            assert!(text.contains(&app::MAX_DECOMPRESSED.to_string()), "{text}");
        }
    }
    assert_no_allocation_near_the_bomb();
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_declaring_no_size_is_cut_at_the_bound() {
    let router = Router::new(RouterConfig::default());
    let bomb = rle_frame(2_048, false); // 256 MiB of zeros, size undeclared
    let just_fits = rle_frame(app::MAX_DECOMPRESSED / RLE_BLOCK, false);
    let one_block_over = rle_frame(app::MAX_DECOMPRESSED / RLE_BLOCK + 1, false);
    assert!(!app::declared_size(&bomb).unwrap().complete);
    for mode in [app::Mode::Helix, app::Mode::SpawnBlocking] {
        let svc = app::app(mode, router.clone());
        for frames in [&bomb, &one_block_over] {
            let (status, body) = send(&svc, post("/decompress", frames.clone())).await;
            let text = String::from_utf8_lossy(&body);
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{mode:?}: {text}");
            assert!(text.contains("runs past"), "{text}");
        }
        let (status, body) = send(&svc, post("/decompress", just_fits.clone())).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert_eq!(
            body.len(),
            app::MAX_DECOMPRESSED,
            "exactly the bound is allowed"
        );

        let text = "no declared size ".repeat(500);
        let packed = packed_without_size(text.as_bytes());
        let (status, body) = send(&svc, post("/decompress", packed)).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert_eq!(body, text.as_bytes());
    }
    assert_no_allocation_near_the_bomb();
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_and_decompress_give_the_router_their_sizes() {
    let router = Router::new(RouterConfig::default());
    let svc = app::app(app::Mode::Helix, router.clone());
    let text = "2026-12-02T11:00:00Z level=info route=/api/items took_us=17\n".repeat(4_096);
    let sizes = [1_024, 4_096, 16_384, 65_536, 200_000];
    for &n in &sizes {
        let (status, body) = send(&svc, post("/compress", text[..n].to_owned())).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let (status, body) = send(&svc, post("/decompress", packed_text(&text[..n]))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.len(), n);
    }
    // A frame with no declared size gives the router no size.
    let (status, _) = send(
        &svc,
        post("/decompress", packed_without_size(text.as_bytes())),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&svc, Request::get("/json").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let stats = router.stats();
    let class = |name: &str| {
        stats
            .classes
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no class {name}"))
            .clone()
    };
    let compress = class("/compress");
    assert_eq!(compress.units_samples, sizes.len() as u64, "{compress:?}");
    let decompress = class("/decompress");
    assert_eq!(decompress.samples, sizes.len() as u64 + 1, "{decompress:?}");
    assert_eq!(
        decompress.units_samples,
        sizes.len() as u64,
        "{decompress:?}"
    );
    assert_eq!(class("/json").units_samples, 0);
    router.shutdown().await;
}

#[test]
fn the_layer_sizes_compress_by_its_body_and_not_decompress() {
    let classify = app::classifier();
    let req = |path: &str| {
        Request::post(path)
            .header("content-length", "4096")
            .body(Body::empty())
            .unwrap()
    };
    let c = classify.classify(&req("/compress"));
    assert_eq!((c.class, c.units), ("/compress", Some(4_096)));
    assert_eq!(c.budget, app::DEFAULT_BUDGET);
    let d = classify.classify(&req("/decompress"));
    assert_eq!((d.class, d.units), ("/decompress", None));
}

/// No single allocation of this test binary came near what a bomb would expand to.
fn assert_no_allocation_near_the_bomb() {
    let largest = LARGEST.load(Relaxed);
    assert!(
        largest < ALLOCATION_CEILING,
        "largest allocation {largest} bytes"
    );
}

//! The SQLite WAL stays bounded under sustained load: a real database file, appends
//! from many writers and readers active all along; the `-wal` file is measured after
//! every append.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use kefu_event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StoreOptions, StreamId};
use serde_json::json;
use uuid::Uuid;

/// The store truncates the WAL once it passes 32 MiB; between a check and the next
/// batch's end it may grow by what a few batches write.
const BOUND: u64 = 64 << 20;
const WRITERS: u64 = 8;
const APPENDS_PER_WRITER: u64 = 200;
/// About 64 kB per event: 1,600 appends write some 100 MB of WAL frames.
const PAYLOAD_BYTES: usize = 64_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_stays_bounded_under_sustained_load() {
    let db = kefu_testkit::sqlite();
    let path = db.sqlite_path().expect("an SQLite file");
    let wal = path.with_file_name(format!(
        "{}-wal",
        path.file_name().and_then(|name| name.to_str()).expect("file name")
    ));
    let store = EventStore::open(db.url(), StoreOptions::default()).await.unwrap();
    let largest = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let measure = {
        let (wal, largest) = (wal.clone(), largest.clone());
        move || {
            let size = std::fs::metadata(&wal).map(|meta| meta.len()).unwrap_or(0);
            largest.fetch_max(size, Ordering::Relaxed);
        }
    };
    // Readers keep snapshots open all along, as list and report queries do.
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (store, done) = (store.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while !done.load(Ordering::Relaxed) {
                let head = store.head_position().await.unwrap();
                store.read_all(head.saturating_sub(20).max(1), 20).await.unwrap();
                reads += 1;
            }
            reads
        }));
    }
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (store, measure) = (store.clone(), measure.clone());
        writers.push(tokio::spawn(async move {
            let stream = StreamId::new(format!("load-{writer}")).unwrap();
            for n in 0..APPENDS_PER_WRITER {
                let payload = json!({ "n": n, "blob": "x".repeat(PAYLOAD_BYTES) });
                let event = NewEvent::new(Uuid::now_v7(), "Loaded", 1, payload);
                store
                    .append(&stream, ExpectedVersion::Any, &[event], &Metadata::default())
                    .await
                    .unwrap();
                measure();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let mut reads = 0;
    for reader in readers {
        reads += reader.await.unwrap();
    }
    measure();
    let database = std::fs::metadata(&path).unwrap().len();
    let largest = largest.load(Ordering::Relaxed);
    eprintln!(
        "appends {} of {PAYLOAD_BYTES} B, reads {reads}, database {database} B, largest WAL {largest} B",
        WRITERS * APPENDS_PER_WRITER
    );
    assert_eq!(store.head_position().await.unwrap(), WRITERS * APPENDS_PER_WRITER);
    assert!(reads > 0, "readers were active");
    assert!(largest <= BOUND, "the WAL reached {largest} bytes, above {BOUND}");
}

//! Micro-benchmarks of the paths every message takes, so regressions show:
//! parsing a client frame, encoding a broadcast once, fanning it out to N socket queues, and
//! appending items to the store with one group commit; and what a delete costs later, the
//! rewrite that erases its text (writes wait that long).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use hearth::ids::{RoomCode, Seq};
use hearth::protocol::{self, ServerFrame};
use hearth::sockets::{ConnHandle, QueueBound};
use hearth::store::rooms::Item;
use hearth::store::Store;

fn frame_codec(c: &mut Criterion) {
    let send = r#"{"type":"send","room":"K7MP2X","text":"hello there, how is everyone doing today?","ref":"s-1842"}"#;
    c.bench_function("parse send frame", |b| {
        b.iter(|| protocol::parse(std::hint::black_box(send)).unwrap())
    });
    let item = Item::chat(
        Seq::new(1842),
        99_000,
        1_795_000_000_000,
        "alice",
        "hello there, how is everyone doing today?".into(),
    );
    c.bench_function("encode message frame", |b| {
        b.iter(|| {
            ServerFrame::Message {
                room: "K7MP2X",
                item: std::hint::black_box(&item),
            }
            .encode()
        })
    });
}

fn fan_out(c: &mut Criterion) {
    let item = Item::chat(Seq::new(7), 7, 0, "alice", "x".repeat(80));
    let frame = ServerFrame::Message {
        room: "K7MP2X",
        item: &item,
    }
    .encode();
    let bound = QueueBound {
        frames: 256,
        bytes: 2 << 20,
    };
    let mut group = c.benchmark_group("fan-out one frame");
    for n in [10usize, 100, 1000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || {
                    (0..n)
                        .map(|i| {
                            // A socket that has had a frame before: its queue has its slots,
                            // as every socket of a room in use does.
                            let conn = ConnHandle::new(i as u64, i as u64, [0; 32], bound);
                            assert!(conn.deliver(&frame));
                            conn.try_next_frame();
                            conn
                        })
                        .collect::<Vec<_>>()
                },
                |sockets| {
                    for conn in &sockets {
                        assert!(conn.deliver(&frame));
                    }
                    sockets
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn store_append(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(async { Store::open(dir.path()).unwrap() });
    let room = RoomCode::parse("K7MP2X").unwrap();
    let mut group = c.benchmark_group("append items + one durable commit");
    group.sample_size(20);
    for batch in [1u64, 64, 512] {
        group.throughput(Throughput::Elements(batch));
        let mut seq = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter(|| {
                for _ in 0..batch {
                    seq += 1;
                    let item = Item::chat(Seq::new(seq), seq, 0, "alice", "hello there".into());
                    store.put_item(&room, &item).unwrap();
                }
                runtime.block_on(store.commit()).unwrap();
            })
        });
    }
    group.finish();
}

fn store_erase(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let room = RoomCode::parse("K7MP2X").unwrap();
    let mut group = c.benchmark_group("erase: rewrite the database after a delete");
    group.sample_size(10);
    for messages in [10_000u64, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for seq in 1..=messages {
            let text = format!("message {seq}: a line of chat of about the usual length, no more");
            let item = Item::chat(Seq::new(seq), seq, seq, "alice", text);
            store.put_item(&room, &item).unwrap();
        }
        runtime.block_on(store.commit()).unwrap();
        store.erase_now().unwrap();
        eprintln!(
            "{messages} messages: the database is {} KiB",
            du(&dir.path().join("db")) / 1024
        );
        let mut seq = 0;
        group.bench_with_input(BenchmarkId::from_parameter(messages), &messages, |b, _| {
            b.iter(|| {
                seq += 1;
                let mut item = store.item(&room, Seq::new(seq)).unwrap().unwrap();
                item.erase();
                store.replace_item(&room, &item).unwrap();
                store.erase_now().unwrap().unwrap();
            })
        });
    }
    group.finish();
}

fn du(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                du(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

criterion_group!(benches, frame_codec, fan_out, store_append, store_erase);
criterion_main!(benches);

//! One conformance suite for both blocklist backends: in-process, and Redis on loopback
//! — one Redis (`TESSERA_TEST_REDIS_URL`) and a Redis Cluster of three masters
//! (`TESSERA_TEST_REDIS_CLUSTER_URL`), each mandatory when `TESSERA_REQUIRE_SERVICES=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "redis")]
use token_core::test_support::{REDIS_CLUSTER_URL, REDIS_URL, service_url};
use token_core::{Clock, ManualClock, Timestamp};
use token_policy::{Blocklist, Error, MemoryBlocklist, TokenRef};
#[cfg(feature = "redis")]
use token_policy::{RedisBlocklist, ReplicaOptions, ReplicatedBlocklist};

fn ts(t: i64) -> Timestamp {
    Timestamp::from_unix_seconds(t).unwrap()
}

/// What every backend must do.
async fn conformance(list: &dyn Blocklist, clock: &ManualClock, tag: &str) {
    let now = clock.now().unix_seconds();
    let jti = format!("{tag}-jti-1");

    assert!(!list.is_revoked(&jti).await.unwrap());
    assert!(list.revoke(&jti, ts(now + 100)).await.unwrap());
    assert!(list.is_revoked(&jti).await.unwrap());
    assert!(!list.is_revoked(&format!("{tag}-jti-2")).await.unwrap());
    // Idempotent, and the second call knows it was not first.
    assert!(!list.revoke(&jti, ts(now + 100)).await.unwrap());
    assert!(list.is_revoked(&jti).await.unwrap());

    // An already expired token needs no entry.
    let old = format!("{tag}-expired");
    assert!(!list.revoke(&old, ts(now - 1)).await.unwrap());
    assert!(!list.is_revoked(&old).await.unwrap());

    // Subject cut-offs keep the later instant.
    let sub = format!("{tag}-alice");
    assert_eq!(list.subject_cutoff(&sub).await.unwrap(), None);
    list.revoke_subject_before(&sub, ts(now), ts(now + 900))
        .await
        .unwrap();
    assert_eq!(list.subject_cutoff(&sub).await.unwrap(), Some(ts(now)));
    list.revoke_subject_before(&sub, ts(now - 50), ts(now + 900))
        .await
        .unwrap();
    assert_eq!(list.subject_cutoff(&sub).await.unwrap(), Some(ts(now)));
    list.revoke_subject_before(&sub, ts(now + 5), ts(now + 900))
        .await
        .unwrap();
    assert_eq!(list.subject_cutoff(&sub).await.unwrap(), Some(ts(now + 5)));
    assert_eq!(
        list.subject_cutoff(&format!("{tag}-bob")).await.unwrap(),
        None
    );

    sessions_and_lookup(list, now, tag, &jti, &sub).await;

    // Ids are bounded.
    for bad in [String::new(), "x".repeat(257)] {
        assert!(matches!(
            list.revoke(&bad, ts(now + 10)).await,
            Err(Error::InvalidRevocationId)
        ));
        assert!(matches!(
            list.is_revoked(&bad).await,
            Err(Error::InvalidRevocationId)
        ));
        assert!(matches!(
            list.subject_cutoff(&bad).await,
            Err(Error::InvalidRevocationId)
        ));
        assert!(matches!(
            list.revoke_session(&bad, ts(now + 10)).await,
            Err(Error::InvalidRevocationId)
        ));
        assert!(matches!(
            list.consume(&sub, &bad, ts(now + 10)).await,
            Err(Error::InvalidRevocationId)
        ));
    }
    let _ = clock;
}

/// Revoked sessions, and the one-call lookup, after `conformance` revoked `jti` and set
/// `sub`'s cut-off at `now + 5`.
async fn sessions_and_lookup(list: &dyn Blocklist, now: i64, tag: &str, jti: &str, sub: &str) {
    // Sessions: revoked until the horizon, which only ever grows.
    let sid = format!("{tag}-sid-1");
    assert!(!list.is_session_revoked(&sid).await.unwrap());
    list.revoke_session(&sid, ts(now + 900)).await.unwrap();
    list.revoke_session(&sid, ts(now + 10)).await.unwrap();
    assert!(list.is_session_revoked(&sid).await.unwrap());
    assert!(
        !list
            .is_session_revoked(&format!("{tag}-sid-2"))
            .await
            .unwrap()
    );
    list.revoke_session(&format!("{tag}-sid-old"), ts(now - 1))
        .await
        .unwrap();
    assert!(
        !list
            .is_session_revoked(&format!("{tag}-sid-old"))
            .await
            .unwrap()
    );

    // One lookup answers all three questions, and only about the names given.
    let state = list
        .lookup(TokenRef {
            jti: Some(jti),
            sid: Some(&sid),
            subject: Some(sub),
        })
        .await
        .unwrap();
    assert!(state.jti && state.session);
    assert_eq!(state.subject_cutoff, Some(ts(now + 5)));
    assert!(state.revokes(Some(ts(now + 6))));
    let clean = list
        .lookup(TokenRef {
            jti: Some(&format!("{tag}-jti-2")),
            sid: Some(&format!("{tag}-sid-2")),
            subject: Some(sub),
        })
        .await
        .unwrap();
    assert!(!clean.jti && !clean.session);
    assert!(
        clean.revokes(Some(ts(now + 5))),
        "issued in the cut-off second"
    );
    assert!(!clean.revokes(Some(ts(now + 6))));
    let nothing = list.lookup(TokenRef::default()).await.unwrap();
    assert!(!nothing.revokes(Some(ts(now))));
}

/// Single use, on a list bounding each subject at three live marks.
async fn single_use(list: &dyn Blocklist, clock: &ManualClock, tag: &str) {
    let now = clock.now().unix_seconds();
    let (alice, bob) = (format!("{tag}-alice"), format!("{tag}-bob"));
    for i in 0..3 {
        let jti = format!("{tag}-pay-{i}");
        assert!(list.consume(&alice, &jti, ts(now + 60 + i)).await.unwrap());
        assert!(!list.consume(&alice, &jti, ts(now + 60 + i)).await.unwrap());
    }
    // The fourth live mark is over alice's bound; a used one is still "used".
    assert!(matches!(
        list.consume(&alice, &format!("{tag}-pay-3"), ts(now + 60))
            .await,
        Err(Error::SingleUseLimit)
    ));
    assert!(
        !list
            .consume(&alice, &format!("{tag}-pay-0"), ts(now + 60))
            .await
            .unwrap()
    );
    // Bob has a bound of his own; revocation has room of its own.
    assert!(
        list.consume(&bob, &format!("{tag}-pay-b"), ts(now + 60))
            .await
            .unwrap()
    );
    assert!(
        list.revoke(&format!("{tag}-after-marks"), ts(now + 60))
            .await
            .unwrap()
    );
    list.revoke_session(&format!("{tag}-sid-after-marks"), ts(now + 60))
        .await
        .unwrap();
    // A consumed mark is not a revocation.
    assert!(!list.is_revoked(&format!("{tag}-pay-0")).await.unwrap());
    // An expired token needs no mark.
    assert!(
        !list
            .consume(&bob, &format!("{tag}-pay-old"), ts(now - 1))
            .await
            .unwrap()
    );
}

/// Of many concurrent revocations of one id, exactly one is first.
async fn single_winner(list: Arc<dyn Blocklist>, clock: &ManualClock, tag: &str) {
    let now = clock.now().unix_seconds();
    let jti = format!("{tag}-race");
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let list = list.clone();
        let jti = jti.clone();
        tasks.push(tokio::spawn(async move {
            list.revoke(&jti, ts(now + 60)).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_single_winner() {
    let clock = Arc::new(ManualClock::at_system_now());
    let list: Arc<dyn Blocklist> = Arc::new(MemoryBlocklist::with_capacity(1000, clock.clone()));
    single_winner(list, &clock, "mem").await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_single_winner() {
    let Some((list, clock, prefix)) = redis().await else {
        return;
    };
    single_winner(Arc::new(list), &clock, &prefix).await;
}

#[tokio::test]
async fn memory_backend_conforms() {
    let clock = Arc::new(ManualClock::at_system_now());
    let list = MemoryBlocklist::with_capacity(1000, clock.clone());
    conformance(&list, &clock, "mem").await;
}

#[tokio::test]
async fn memory_single_use_is_bounded_per_subject() {
    let clock = Arc::new(ManualClock::at_system_now());
    let list = MemoryBlocklist::with_capacity(1000, clock.clone()).single_use_per_subject(3);
    single_use(&list, &clock, "mem").await;
    // Marks leave with their tokens, and the bound frees up.
    clock.advance(Duration::from_secs(61));
    let now = clock.now().unix_seconds();
    assert!(
        list.consume("mem-alice", "mem-pay-9", ts(now + 60))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn memory_single_use_never_takes_the_room_of_revocations() {
    let clock = Arc::new(ManualClock::at_system_now());
    let list = MemoryBlocklist::with_capacity(4, clock.clone()).single_use_per_subject(100);
    let now = clock.now().unix_seconds();
    // Marks fill their own capacity (4) and stop there, with a typed error.
    for i in 0..4 {
        list.consume("alice", &format!("p{i}"), ts(now + 300))
            .await
            .unwrap();
    }
    assert!(matches!(
        list.consume("alice", "p4", ts(now + 300)).await,
        Err(Error::BlocklistFull)
    ));
    // Logout's revocations still have all of theirs.
    for i in 0..4 {
        list.revoke_session(&format!("s{i}"), ts(now + 900))
            .await
            .unwrap();
    }
    assert_eq!(list.len(), 4);
}

#[tokio::test]
async fn memory_entries_live_exactly_as_long_as_the_token() {
    let clock = Arc::new(ManualClock::at_system_now());
    let list = MemoryBlocklist::with_capacity(1000, clock.clone());
    let now = clock.now().unix_seconds();
    list.revoke("a", ts(now + 60)).await.unwrap();
    list.revoke_subject_before("alice", ts(now), ts(now + 900))
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    clock.advance(Duration::from_secs(59));
    assert!(list.is_revoked("a").await.unwrap());
    clock.advance(Duration::from_secs(1));
    assert!(!list.is_revoked("a").await.unwrap());
    assert_eq!(list.len(), 1);
    clock.advance(Duration::from_secs(840));
    assert_eq!(list.subject_cutoff("alice").await.unwrap(), None);
    assert!(list.is_empty());
}

#[tokio::test]
async fn memory_backend_refuses_rather_than_forgets_when_full() {
    let clock = Arc::new(ManualClock::at_system_now());
    let list = MemoryBlocklist::with_capacity(3, clock.clone());
    let now = clock.now().unix_seconds();
    list.revoke("a", ts(now + 10)).await.unwrap();
    list.revoke("b", ts(now + 100)).await.unwrap();
    list.revoke("c", ts(now + 100)).await.unwrap();
    assert!(matches!(
        list.revoke("d", ts(now + 100)).await,
        Err(Error::BlocklistFull)
    ));
    // Every earlier revocation still holds.
    for j in ["a", "b", "c"] {
        assert!(list.is_revoked(j).await.unwrap(), "{j}");
    }
    // Re-revoking a present id needs no room.
    list.revoke("b", ts(now + 100)).await.unwrap();
    // Once "a" expires there is room again.
    clock.advance(Duration::from_secs(10));
    list.revoke("d", ts(now + 100)).await.unwrap();
    assert!(list.is_revoked("d").await.unwrap());
    assert!(!list.is_revoked("a").await.unwrap());
}

#[cfg(feature = "redis")]
fn random_prefix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    format!("test-{}:", u64::from_le_bytes(bytes))
}

#[cfg(feature = "redis")]
async fn redis() -> Option<(RedisBlocklist, Arc<ManualClock>, String)> {
    let url = service_url(REDIS_URL, "redis blocklist")?;
    let clock = Arc::new(ManualClock::at_system_now());
    let prefix = random_prefix();
    let list = RedisBlocklist::connect(&url)
        .await
        .unwrap()
        .with_prefix(prefix.clone())
        .with_clock(clock.clone());
    Some((list, clock, prefix))
}

/// The cluster's node URLs (`TESSERA_TEST_REDIS_CLUSTER_URL`, comma-separated).
#[cfg(feature = "redis")]
fn cluster_nodes(test: &str) -> Option<Vec<String>> {
    let urls = service_url(REDIS_CLUSTER_URL, test)?;
    Some(urls.split(',').map(|u| u.trim().to_owned()).collect())
}

/// A blocklist on the Redis Cluster, under a prefix of its own.
#[cfg(feature = "redis")]
async fn redis_cluster() -> Option<(RedisBlocklist, Arc<ManualClock>, String)> {
    let nodes = cluster_nodes("redis cluster blocklist")?;
    let clock = Arc::new(ManualClock::at_system_now());
    let prefix = random_prefix();
    let list = RedisBlocklist::connect_cluster(&nodes)
        .await
        .unwrap()
        .with_prefix(prefix.clone())
        .with_clock(clock.clone());
    assert!(list.is_cluster());
    Some((list, clock, prefix))
}

/// The master serving `key`'s slot, as `host:port`, asked of the node at `url`.
#[cfg(feature = "redis")]
async fn slot_owner(url: &str, key: &str) -> String {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    // [[start, end, [host, port, id, …], replicas…], …]
    let ranges: Vec<(i64, i64, (String, i64))> = {
        let raw: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .unwrap();
        raw.into_iter()
            .map(|r| {
                let start: i64 = redis::from_redis_value(&r[0]).unwrap();
                let end: i64 = redis::from_redis_value(&r[1]).unwrap();
                let master: Vec<redis::Value> = redis::from_redis_value(&r[2]).unwrap();
                let host: String = redis::from_redis_value(&master[0]).unwrap();
                let port: i64 = redis::from_redis_value(&master[1]).unwrap();
                (start, end, (host, port))
            })
            .collect()
    };
    let (_, _, (host, port)) = ranges
        .into_iter()
        .find(|(start, end, _)| (*start..=*end).contains(&slot))
        .unwrap_or_else(|| panic!("slot {slot} is served by no master"));
    format!("{host}:{port}")
}

/// The conformance suite on the cluster, once under a prefix served by each master (so
/// commands reach nodes other than the seed they started from), each prefix's entries
/// found on its own master only.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_cluster_backend_conforms() {
    let Some(nodes) = cluster_nodes("redis cluster blocklist") else {
        return;
    };
    let mut by_owner = std::collections::BTreeMap::new();
    for _ in 0..500 {
        let prefix = random_prefix();
        let owner = slot_owner(&nodes[0], &format!("{{{prefix}}}")).await;
        by_owner.entry(owner).or_insert(prefix);
        if by_owner.len() == 3 {
            break;
        }
    }
    assert_eq!(by_owner.len(), 3, "three masters: {by_owner:?}");
    for (owner, prefix) in &by_owner {
        let clock = Arc::new(ManualClock::at_system_now());
        let list = RedisBlocklist::connect_cluster(&nodes)
            .await
            .unwrap()
            .with_prefix(prefix.clone())
            .with_clock(clock.clone());
        conformance(&list, &clock, prefix).await;
        // The revoked jti is stored on the master serving the prefix, and only there.
        let key = format!("{{{prefix}}}bl:{prefix}-jti-1");
        for node in &nodes {
            let mut conn = redis::Client::open(node.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let here: redis::RedisResult<i64> =
                redis::cmd("EXISTS").arg(&key).query_async(&mut conn).await;
            let serving = node.contains(owner.as_str());
            match here {
                Ok(n) => assert!(serving && n == 1, "{key} on {node}: {n}"),
                Err(e) => assert!(
                    !serving && e.kind() == redis::ErrorKind::Moved,
                    "{key} on {node}: {e:?}"
                ),
            }
        }
    }
}

/// The suite on a revocation replica fed by the cluster: reads from memory, writes
/// through the cluster, single use on it.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_cluster_replica_conforms() {
    let Some((list, clock, prefix)) = redis_cluster().await else {
        return;
    };
    let replica =
        ReplicatedBlocklist::start(list.single_use_per_subject(3), ReplicaOptions::default())
            .await
            .unwrap();
    conformance(&replica, &clock, &prefix).await;
    let marks = format!("{prefix}marks");
    single_use(&replica, &clock, &marks).await;
    assert_eq!(replica.status().last_error, None);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_single_winner() {
    let Some((list, clock, prefix)) = redis_cluster().await else {
        return;
    };
    single_winner(Arc::new(list), &clock, &prefix).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_cluster_single_use_is_bounded_per_subject() {
    let Some((list, clock, prefix)) = redis_cluster().await else {
        return;
    };
    let list = list.single_use_per_subject(3);
    single_use(&list, &clock, &prefix).await;
    clock.advance(Duration::from_secs(61));
    let now = clock.now().unix_seconds();
    let alice = format!("{prefix}-alice");
    assert!(
        list.consume(&alice, &format!("{prefix}-pay-9"), ts(now + 60))
            .await
            .unwrap()
    );
}

/// Connecting the wrong way round is a typed error naming the servers, never a
/// blocklist that reaches only some slots: a cluster node given as one Redis, one
/// Redis given as a cluster.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_and_redis_cluster_refuse_each_others_servers() {
    if let Some(nodes) = cluster_nodes("a cluster node given as one Redis") {
        let err = RedisBlocklist::connect(&nodes[0]).await.unwrap_err();
        assert!(
            matches!(&err, Error::Connect { backend: "Redis", reason, .. } if reason.contains("connect_cluster")),
            "{err:?}"
        );
    }
    if let Some(url) = service_url(REDIS_URL, "one Redis given as a cluster") {
        let err = RedisBlocklist::connect_cluster(&[url.as_str()])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Connect { backend: "Redis Cluster", reason, .. } if reason.contains("not a cluster node")),
            "{err:?}"
        );
        let list = RedisBlocklist::connect(&url).await.unwrap();
        assert!(!list.is_cluster());
    }
}

/// Cluster seeds that refuse are one typed error at once, naming every seed and never
/// a password; malformed seed lists are configuration errors.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_cluster_unreachable_is_a_connect_error_at_once() {
    let ports: Vec<u16> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("redis://:hunter2@127.0.0.1:{p}"))
        .collect();
    let started = std::time::Instant::now();
    let err = RedisBlocklist::connect_cluster(&urls).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(&err, Error::Connect { backend: "Redis Cluster", address, reason }
            if reason.contains("refused")
                && *address == format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1])),
        "{err:?}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(
        elapsed < Duration::from_secs(2),
        "a refusal took {elapsed:?}"
    );
    let none: [&str; 0] = [];
    for bad in [
        &none[..],
        &["not a url"][..],
        &["redis://127.0.0.1:1/3"][..],
        &["redis://:a@127.0.0.1:1", "redis://:b@127.0.0.1:2"][..],
    ] {
        let err = RedisBlocklist::connect_cluster(bad).await.unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{bad:?}: {err:?}");
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_backend_conforms() {
    let Some((list, clock, prefix)) = redis().await else {
        return;
    };
    conformance(&list, &clock, &prefix).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_single_use_is_bounded_per_subject() {
    let Some((list, clock, prefix)) = redis().await else {
        return;
    };
    let list = list.single_use_per_subject(3);
    single_use(&list, &clock, &prefix).await;
    // The per-subject count follows the injected clock: past the tokens' expiry the
    // bound frees up.
    clock.advance(Duration::from_secs(61));
    let now = clock.now().unix_seconds();
    let alice = format!("{prefix}-alice");
    assert!(
        list.consume(&alice, &format!("{prefix}-pay-9"), ts(now + 60))
            .await
            .unwrap()
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_ttl_is_the_remaining_lifetime() {
    let Some((list, clock, _)) = redis().await else {
        return;
    };
    let now = clock.now().unix_seconds();
    list.revoke("ttl-check", ts(now + 100)).await.unwrap();
    let ttl = list.remaining_ttl("ttl-check").await.unwrap().unwrap();
    assert!((98..=100).contains(&ttl), "ttl {ttl}");
    assert_eq!(list.remaining_ttl("never-revoked").await.unwrap(), None);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_unreachable_is_a_connect_error_at_once() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let started = std::time::Instant::now();
    let err = RedisBlocklist::connect(&format!("redis://:hunter2@127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(&err, Error::Connect { backend: "Redis", reason, .. } if reason.contains("refused")),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        elapsed < Duration::from_secs(2),
        "a refusal took {elapsed:?}"
    );
    let err = RedisBlocklist::connect("not a url").await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

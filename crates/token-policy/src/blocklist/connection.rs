//! The connections behind a [`super::RedisBlocklist`] and its replica's feed: one Redis
//! (a reconnecting manager, or a multiplexed connection of the feed's own) or a Redis
//! Cluster (each command routed to the node that owns its keys' slot; every key of a
//! blocklist carries one hash tag, so one script's keys always share a slot).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};

/// How many times a cluster request is retried (a redirection counts as one), and the
/// waits between tries: as bounded as the single-node connection manager.
const CLUSTER_RETRIES: u32 = 2;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 20;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 500;

/// A connection to one Redis or to a Redis Cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One Redis, reconnecting on its own.
    Manager(ConnectionManager),
    /// One Redis, on a connection of the feed's own.
    Node(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Manager(c) => c.req_packed_command(cmd),
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Manager(c) => c.req_packed_commands(cmd, offset, count),
            Self::Node(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Manager(c) => c.get_db(),
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Where a blocklist's data lives, to open connections of its own (a replica's feed
/// blocks on its reads, so it never shares the blocklist's connection).
#[derive(Clone)]
pub(crate) enum Target {
    /// One Redis.
    Node(redis::Client),
    /// A Redis Cluster, by its seed nodes.
    Cluster(Vec<ConnectionInfo>),
}

impl Target {
    /// A connection of its own; on a cluster each request (a blocking read included)
    /// may take up to `timeout`.
    pub(crate) async fn dedicated(&self, timeout: Duration) -> RedisResult<Conn> {
        match self {
            Self::Node(client) => client
                .get_multiplexed_async_connection()
                .await
                .map(Conn::Node),
            Self::Cluster(nodes) => cluster_client(nodes, timeout)?
                .get_async_connection()
                .await
                .map(Conn::Cluster),
        }
    }
}

/// A cluster client on `nodes` whose connections open and answer within `timeout`,
/// with few, quick retries (a revocation check must not hang), reading from primaries
/// only (a replica of a shard may lag its primary).
pub(crate) fn cluster_client(
    nodes: &[ConnectionInfo],
    timeout: Duration,
) -> RedisResult<ClusterClient> {
    ClusterClientBuilder::new(nodes.to_vec())
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
        .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .build()
}

//! One connection type for a single Redis and for a Redis Cluster. Every multi-key operation the
//! backend makes touches one hash slot (keys.rs), except the batches that refresh many accounts
//! or publish to many channels: those are sent as one pipeline to a single Redis, one per slot
//! to a cluster.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// Pipelines sent to a cluster at once by [`Link::run_groups`].
const IN_FLIGHT: usize = 64;

#[derive(Clone)]
pub enum Link {
    One(ConnectionManager),
    Many(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::One(c) => c.req_packed_command(cmd),
            Link::Many(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::One(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Many(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::One(c) => c.get_db(),
            Link::Many(c) => c.get_db(),
        }
    }
}

impl Link {
    /// Runs pipelines that each stay in one slot, ignoring their replies: as one round trip on a
    /// single Redis, one per pipeline on a cluster — [`IN_FLIGHT`] at a time over the multiplexed
    /// connection, so thousands of them (every group pass held here) take a few round trips'
    /// time, not thousands.
    pub async fn run_groups(&mut self, groups: Vec<Pipeline>) -> RedisResult<()> {
        match self {
            Link::One(c) => {
                let mut all = redis::pipe();
                for cmd in groups.iter().flat_map(|g| g.cmd_iter()) {
                    all.add_command(cmd.clone()).ignore();
                }
                if all.is_empty() {
                    return Ok(());
                }
                all.query_async(c).await
            }
            Link::Many(c) => {
                use futures_util::{StreamExt, TryStreamExt};
                futures_util::stream::iter(groups.into_iter().filter(|g| !g.is_empty()))
                    .map(|g| {
                        let mut c = c.clone();
                        async move { g.query_async::<Vec<Value>>(&mut c).await.map(drop) }
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .try_collect::<Vec<()>>()
                    .await
                    .map(drop)
            }
        }
    }

    /// `SSUBSCRIBE` (on a cluster, at the shard that owns the channel's slot).
    pub async fn ssubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Link::One(c) => {
                let _: Value = redis::cmd("SSUBSCRIBE").arg(channel).query_async(c).await?;
                Ok(())
            }
            Link::Many(c) => c.ssubscribe(channel).await,
        }
    }

    pub async fn sunsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Link::One(c) => {
                let _: Value = redis::cmd("SUNSUBSCRIBE")
                    .arg(channel)
                    .query_async(c)
                    .await?;
                Ok(())
            }
            Link::Many(c) => c.sunsubscribe(channel).await,
        }
    }
}

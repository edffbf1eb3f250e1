//! The columnar checker: every region has a columnar learner on each
//! analytics store that is up (TiFlash's place: a node that keeps only
//! columnar copies), and none on an analytics store that is leaving.
//! Row stores keep their own columnar learner beside their voter; the
//! node adds that one itself, so it is not placed here.

use std::collections::BTreeMap;

use super::{load, operator};
use crate::RegionId;
use crate::cluster::{AdminState, Cluster, RegionInfo, Role};
use crate::operator::{Operator, OperatorKind, Step};

pub(super) fn check(
    cluster: &Cluster,
    region: &RegionInfo,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> Option<Operator> {
    let analytics = (cluster.stores.values()).filter(|s| s.role == Role::Analytics);
    let mut leaving = analytics.clone().filter(|s| s.admin != AdminState::Up);
    if let Some(s) = leaving.find(|s| region.learners.contains(&s.id)) {
        return Some(operator(
            cluster,
            region.id,
            OperatorKind::RemoveColumnar,
            vec![Step::RemovePeer(s.id)],
            now_ms,
        ));
    }
    let missing = analytics
        .filter(|s| s.admin == AdminState::Up && cluster.is_up(s.id, now_ms))
        .find(|s| {
            !region.has_peer(s.id) && load(operators, s.id) < cluster.config.schedule_limit
        })?;
    Some(operator(
        cluster,
        region.id,
        OperatorKind::AddColumnar,
        vec![Step::AddLearner(missing.id)],
        now_ms,
    ))
}

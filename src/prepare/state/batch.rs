//! Prepare and unprepare for all the claims of one kubelet call under one lock, one
//! checkpoint read and two checkpoint writes, instead of two writes per claim: each write is
//! an fsync of the file and of its directory, which is what a call's latency is made of.
//!
//! ```text
//! prepare:   plan every claim ─▶ write: all PrepareStarted ─▶ devices + CDI, claim by claim
//!            (a failing claim is undone at once) ─▶ write: PrepareCompleted, failed ones gone
//! unprepare: write: all UnprepareStarted ─▶ CDI + devices, claim by claim ─▶ write: records gone
//! ```
//!
//! A crash anywhere leaves every claim of the call recorded as started, which recovery
//! undoes; a failed write fails every claim of the call and undoes what the call set up.

use std::collections::HashSet;

use tracing::{info, warn};

use super::{DeviceState, set_state};
use crate::model::Inventory;
use crate::prepare::checkpoint::{CheckpointData, ClaimRecord, ClaimState};
use crate::prepare::claim::{AllocatedDevice, ClaimRef, PreparedDevice};
use crate::prepare::error::PrepareError;
use crate::prepare::fault::Step;

/// One outcome per claim, in the order the claims were given.
pub type Outcomes<T> = Vec<Result<T, PrepareError>>;

/// Outcomes being filled in; every slot is set before [`Slots::finish`].
struct Slots<T>(Vec<Option<Result<T, PrepareError>>>);

impl<T> Slots<T> {
    fn new(n: usize) -> Self {
        Slots((0..n).map(|_| None).collect())
    }

    fn set(&mut self, i: usize, outcome: Result<T, PrepareError>) {
        if let Some(slot) = self.0.get_mut(i) {
            *slot = Some(outcome);
        }
    }

    /// Give each of `claims` its share of one failure of the call.
    fn fail_all(&mut self, claims: &[usize], error: PrepareError) {
        for (&i, error) in claims.iter().zip(error.for_each_claim(claims.len())) {
            self.set(i, Err(error));
        }
    }

    fn finish(self) -> Outcomes<T> {
        self.0
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| {
                    Err(PrepareError::Task("the claim got no outcome".to_owned()))
                })
            })
            .collect()
    }
}

/// The call's claims that repeat an earlier claim's UID get an error; the rest are returned.
fn first_occurrences<'a, T>(uids: impl Iterator<Item = &'a str>, out: &mut Slots<T>) -> Vec<usize> {
    let mut seen = HashSet::new();
    let mut firsts = Vec::new();
    for (i, uid) in uids.enumerate() {
        if seen.insert(uid) {
            firsts.push(i);
        } else {
            out.set(
                i,
                Err(PrepareError::InvalidRequest {
                    reason: format!("claim UID {uid} appears twice in one call"),
                }),
            );
        }
    }
    firsts
}

impl DeviceState {
    /// Prepare every claim of one call, each with its allocated devices. Each claim gets its
    /// own outcome, in order; a claim already prepared returns what it returned before and
    /// costs no checkpoint write, a half-prepared one is rolled back and prepared again.
    pub async fn prepare_all(
        &self,
        claims: &[(ClaimRef, Vec<AllocatedDevice>)],
        inventory: &Inventory,
    ) -> Outcomes<Vec<PreparedDevice>> {
        let mut out = Slots::new(claims.len());
        let todo = first_occurrences(claims.iter().map(|(c, _)| c.uid.as_str()), &mut out);
        let _serial = self.serial.lock().await;
        let (_lock, mut data) = match self.lock_and_load().await {
            Ok(loaded) => loaded,
            Err(error) => {
                out.fail_all(&todo, error);
                return out.finish();
            }
        };

        // Claims done before answer from the record; unfinished attempts are undone first
        // (the checkpoint already says they are unfinished, so no write is needed before).
        let mut dirty = false;
        let mut to_plan = Vec::with_capacity(todo.len());
        for i in todo {
            let claim = &claims[i].0;
            match data.claims.get(&claim.uid) {
                Some(record) if record.state == ClaimState::PrepareCompleted => {
                    out.set(i, Ok(record.prepared_devices()));
                }
                Some(record) => {
                    info!(claim = %claim, state = ?record.state, "rolling back an unfinished attempt first");
                    match self.undo(&data, &claim.uid).await {
                        Ok(()) => {
                            data.claims.remove(&claim.uid);
                            dirty = true;
                            to_plan.push(i);
                        }
                        Err(error) => out.set(i, Err(error)),
                    }
                }
                None => to_plan.push(i),
            }
        }

        // Plan each claim against the checkpoint and the claims planned before it in this
        // call, so two claims of one call can no more share a device than two calls can.
        let mut planned = Vec::with_capacity(to_plan.len());
        for i in to_plan {
            let (claim, allocated) = &claims[i];
            match self.plan(claim, allocated, inventory, &data) {
                Ok(devices) => {
                    data.claims.insert(
                        claim.uid.clone(),
                        ClaimRecord {
                            namespace: claim.namespace.clone(),
                            name: claim.name.clone(),
                            state: ClaimState::PrepareStarted,
                            devices,
                        },
                    );
                    planned.push(i);
                }
                Err(error) => out.set(i, Err(error)),
            }
        }
        if planned.is_empty() && !dirty {
            return out.finish();
        }
        if data.boot_id.is_empty() {
            data.boot_id.clone_from(&self.config.boot_id);
        }
        // PrepareStarted for every planned claim is durable before any device changes.
        if let Err(error) = self.record(Step::RecordPrepareStarted, &data).await {
            out.fail_all(&planned, error);
            return out.finish();
        }

        // Each claim's devices see only the claims set up before it, as if the claims came
        // one call each: a claim later in the call, not set up yet, holds no sharing mode.
        let pending: Vec<(usize, ClaimRecord)> = planned
            .iter()
            .filter_map(|&i| data.claims.remove(&claims[i].0.uid).map(|r| (i, r)))
            .collect();
        let mut applied = Vec::with_capacity(pending.len());
        for (i, record) in pending {
            let claim = &claims[i].0;
            data.claims.insert(claim.uid.clone(), record);
            match self.apply(&mut data, &claim.uid).await {
                Ok(()) => {
                    set_state(&mut data, &claim.uid, ClaimState::PrepareCompleted);
                    applied.push(i);
                }
                Err(error) => {
                    self.roll_back(&mut data, claim).await;
                    out.set(i, Err(error));
                }
            }
        }

        match self.record(Step::RecordPrepareCompleted, &data).await {
            Ok(()) => {
                for i in applied {
                    let answer = data
                        .claims
                        .get(&claims[i].0.uid)
                        .map(ClaimRecord::prepared_devices)
                        .ok_or_else(|| {
                            PrepareError::Task("claim vanished from the checkpoint".to_owned())
                        });
                    out.set(i, answer);
                }
            }
            Err(error) => {
                // Disk says PrepareStarted for all of them: undo what this call set up, last
                // first, so no claim is left prepared that the kubelet is told failed.
                for &i in applied.iter().rev() {
                    let claim = &claims[i].0;
                    set_state(&mut data, &claim.uid, ClaimState::PrepareStarted);
                    self.roll_back(&mut data, claim).await;
                }
                if let Err(again) = self.record(Step::RemoveRecord, &data).await {
                    warn!(error = %again, "cannot record the rollback; recovery finishes it");
                }
                out.fail_all(&applied, error);
            }
        }
        out.finish()
    }

    /// Unprepare every claim of one call. Each claim gets its own outcome, in order; an
    /// unknown claim is a success and costs no checkpoint write.
    pub async fn unprepare_all(&self, claims: &[ClaimRef]) -> Outcomes<()> {
        let mut out = Slots::new(claims.len());
        let todo = first_occurrences(claims.iter().map(|c| c.uid.as_str()), &mut out);
        let _serial = self.serial.lock().await;
        let (_lock, mut data) = match self.lock_and_load().await {
            Ok(loaded) => loaded,
            Err(error) => {
                out.fail_all(&todo, error);
                return out.finish();
            }
        };
        let mut known = Vec::with_capacity(todo.len());
        let mut marked = false;
        for i in todo {
            match data.claims.get_mut(&claims[i].uid) {
                None => out.set(i, Ok(())),
                Some(record) => {
                    if record.state == ClaimState::PrepareCompleted {
                        record.state = ClaimState::UnprepareStarted;
                        marked = true;
                    }
                    known.push(i);
                }
            }
        }
        if marked && let Err(error) = self.record(Step::RecordUnprepareStarted, &data).await {
            out.fail_all(&known, error);
            return out.finish();
        }

        let mut removed = Vec::with_capacity(known.len());
        for i in known {
            let uid = &claims[i].uid;
            match self.undo(&data, uid).await {
                Ok(()) => {
                    data.claims.remove(uid);
                    removed.push(i);
                }
                // The record stays as it is on disk; the kubelet's retry or recovery
                // finishes the teardown.
                Err(error) => out.set(i, Err(error)),
            }
        }
        if removed.is_empty() {
            return out.finish();
        }
        match self.record(Step::RemoveRecord, &data).await {
            Ok(()) => {
                for i in removed {
                    out.set(i, Ok(()));
                }
            }
            // The devices are released; the records still say UnprepareStarted, so the
            // kubelet's retry (or recovery) drops them.
            Err(error) => out.fail_all(&removed, error),
        }
        out.finish()
    }

    /// Undo a claim of this call whose setup failed, and drop its record from `data` (the
    /// call's next write records that). If undoing fails, the record stays `PrepareStarted`
    /// for the next attempt or recovery to finish.
    async fn roll_back(&self, data: &mut CheckpointData, claim: &ClaimRef) {
        match self.undo(data, &claim.uid).await {
            Ok(()) => {
                data.claims.remove(&claim.uid);
            }
            Err(error) => {
                set_state(data, &claim.uid, ClaimState::PrepareStarted);
                warn!(claim = %claim, %error, "rollback after a failed prepare failed; will retry");
            }
        }
    }
}

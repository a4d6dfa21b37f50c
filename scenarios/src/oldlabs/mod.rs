//! The course's earlier ladder (2014–2015 labs, reference `6824-old-labs.md`) as scenario
//! families, every one on the simulated network's old mode (`sim::net::old`): `viewservice`
//! (lab 2A), `pbservice` (lab 2B), `paxos` (lab 3A), `kvpaxos` (lab 3B, with the kvraft
//! suite on the Paxos engine), `shardmaster` (lab 4A) and `shardkv_paxos` (lab 4B, with the
//! later shardkv suite on the Paxos engine).

pub mod kvpaxos;
pub mod paxos;
pub mod pbservice;
pub mod shardkv_paxos;
pub mod shardmaster;
pub mod viewservice;

use checkers::views::{ViewChecker, ViewState};
use cores::viewservice::VsObservation;
use sim::Failure;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The course's `PingInterval`, the unit of every poll loop in these tests.
pub(crate) const PING: Duration = Duration::from_millis(cores::viewservice::PING_INTERVAL_MS);

/// An observer that checks the view service after every step and ends the run on a broken
/// rule (`view-service` check).
pub(crate) fn view_observer() -> nodes::oldlabs::viewservice::VsObserver {
    let checker = Rc::new(RefCell::new(ViewChecker::default()));
    Rc::new(move |o: VsObservation| {
        let s = ViewState {
            viewnum: o.view.viewnum,
            primary: o.view.primary,
            backup: o.view.backup,
            acked_viewnum: o.acked_viewnum,
        };
        // Servers by their node names (`ck1`, `s2`), as the trace and the timeline name them.
        if let Err(why) = checker.borrow_mut().step_named(s, &|id| sim::node_name(sim::NodeId(id))) {
            if !sim::failed() {
                sim::fail(Failure::safety("view-service", why));
            }
        }
    })
}

/// A failed course assertion about what the system did (a wrong value, view or count): a
/// safety violation.
pub(crate) fn fatal(check: &str, what: impl Into<String>) -> Failure {
    Failure::safety(check, what)
}

/// A failed course assertion that something happens within the test's polling bound (the
/// course's `waitn`, a view that "never" changes): a liveness failure, exit 2, like every
/// other deadline that passed.
pub(crate) fn stalled(check: &str, what: impl Into<String>) -> Failure {
    Failure::liveness(check, what)
}

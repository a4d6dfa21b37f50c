//! The view service process and its clerk: a loop that feeds pings and the 100 ms tick to
//! `cores::viewservice::ViewService` and answers with the view it returns.

use cores::viewservice::{ServerId, View, ViewService, VsBugs, VsObservation, VsRequest, PING_INTERVAL_MS};
use sim::{Incoming, NodeCtx, NodeId, RpcError};
use std::rc::Rc;
use std::time::Duration;

/// Sees the view service's state after every step (ping or tick), for safety checkers.
pub type VsObserver = Rc<dyn Fn(VsObservation)>;

/// Starts the view service as process `name`. It keeps no persistent state: the course
/// assumes it never fails.
pub fn spawn_viewservice(name: &str, bugs: VsBugs, observer: VsObserver) -> NodeId {
    sim::spawn_process(name, move |ctx: NodeCtx| {
        let observer = observer.clone();
        async move {
            let mut vs = ViewService::new(bugs);
            let now_ms = || sim::now().as_millis() as u64;
            let mut next_tick = sim::now() + Duration::from_millis(PING_INTERVAL_MS);
            loop {
                match ctx.recv_until(next_tick).await {
                    None => {
                        vs.tick(now_ms());
                        next_tick += Duration::from_millis(PING_INTERVAL_MS);
                    }
                    Some(Incoming::Request { payload, reply_to, .. }) => {
                        let view = match sim::decode::<VsRequest>(&payload) {
                            VsRequest::Ping { me, viewnum } => vs.on_ping(me, viewnum, now_ms()),
                            VsRequest::Get => vs.view(),
                        };
                        ctx.reply(reply_to, &view);
                    }
                    Some(Incoming::Response { .. }) => {}
                }
                observer(vs.observe());
            }
        }
    })
}

/// The course's `viewservice.Clerk`: pings and gets through one endpoint.
#[derive(Clone, Copy)]
pub struct VsClerk {
    pub ctx: NodeCtx,
    pub vs: NodeId,
}

impl VsClerk {
    /// `Ping(viewnum)` as server `me` (the server's own identity; a test clerk uses its own).
    pub async fn ping(&self, me: ServerId, viewnum: u64) -> Result<View, RpcError> {
        self.ctx.call(self.vs, &VsRequest::Ping { me, viewnum }).await
    }

    /// `Get()`: the current view (`None` if the call failed).
    pub async fn get(&self) -> Option<View> {
        self.ctx.call(self.vs, &VsRequest::Get).await.ok()
    }

    /// `Primary()`: the current primary, if any (and if the service answered).
    pub async fn primary(&self) -> Option<ServerId> {
        self.get().await.and_then(|v| v.primary)
    }
}

//! Shells of the course's earlier ladder (2014–2015 labs), run on the simulated network's old
//! mode (`sim::net::old`): the view service and the primary/backup key/value service.
//! Every decision is the pure cores' (`cores::viewservice`, `cores::pbservice`); these loops
//! carry out their outputs.

pub mod paxos;
pub mod pbservice;
pub mod viewservice;

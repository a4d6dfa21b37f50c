//! The scenario catalogue: families of scenarios and the planted bugs their nodes know,
//! filters over scenario names, the options of one run and their validation, and running
//! one scenario under one seed.
//!
//! A [`Catalogue`] is plain data that any crate can build: this project's is
//! [`crate::catalogue`], and a downstream crate adds families of its own (its own
//! implementation under the project's scenarios, or its own protocol) and hands the result
//! to the command-line library (`simlab_cli::main`), which gives every command for it.
//!
//! Names are `family::name_lab`. A filter ([`Filter`]) selects a family by its `::`-prefix
//! (`raft` selects `raft::…`, never `kvraft::…`), a single scenario by its full name,
//! several by a glob (`raft::*_2c`, `raft::{backup,rejoin}_2b`), or everything with `all`.
//! A filter that matches nothing is an error.

use crate::spec::{SpecFile, SpecRecorder, WorkloadKind};
use sim::faults::{FaultSchedule, FaultsError, Target};
use sim::{Failure, RunConfig, RunReport, TraceMode};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a scenario's body returns: `Ok(())` when every check passed, or the failure that
/// ended the run.
pub type ScenarioFuture = Pin<Box<dyn Future<Output = Result<(), Failure>>>>;

/// Input that a command or a library caller must correct: an unknown name, a filter that
/// selects nothing, an option the scenario does not take, an unreadable or out-of-range
/// fault file. Each displays as one line that says what was wrong and what to do; the
/// command line prints it and exits with status 4. Never a run's outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A filter selected no scenario.
    #[error(
        "no scenario matches '{filter}': use a family ({}), a full name, a glob such as '{}::*', or 'all'; `{command} list` shows them",
        families.join(", "),
        families.first().copied().unwrap_or("family")
    )]
    NoMatch {
        /// The filter as given.
        filter: String,
        /// The command serving the catalogue ([`Catalogue::command`]), for the hint.
        command: &'static str,
        /// The catalogue's families, for the message.
        families: Vec<&'static str>,
    },
    /// A filter with glob characters that is not a valid glob.
    #[error("bad glob '{filter}': {reason}")]
    BadGlob {
        /// The filter as given.
        filter: String,
        /// The glob parser's complaint.
        reason: String,
    },
    /// A command that runs one scenario was given a name that is not exactly one.
    #[error("'{name}' is not one scenario: give a full name such as {example} (see `{command} list`)")]
    NotOneScenario {
        /// The command serving the catalogue ([`Catalogue::command`]), for the hint.
        command: &'static str,
        /// The name as given.
        name: String,
        /// The catalogue's scenario name nearest to `name` (fewest edits), for the message.
        example: &'static str,
    },
    /// A planted bug that a selected scenario's family does not know.
    #[error(
        "unknown planted bug '{bug}' for family {family}: {}",
        if known.is_empty() {
            format!("it has none (`{command} list --bugs` names every family's)")
        } else {
            format!("known bugs are {} (`{command} list --bugs` describes them)", known.join(", "))
        }
    )]
    UnknownBug {
        /// The command serving the catalogue ([`Catalogue::command`]), for the hint.
        command: &'static str,
        /// The bug as given.
        bug: String,
        /// The family that does not know it.
        family: &'static str,
        /// The family's planted bugs.
        known: Vec<&'static str>,
    },
    /// `--faults` or `--save-faults` for a scenario that declares no fault schedule.
    #[error(
        "{scenario} takes no fault schedule, so --faults/--save-faults would be ignored: use them with a scenario that does (`{command} list` marks them)"
    )]
    NoFaultSchedule {
        /// The command serving the catalogue ([`Catalogue::command`]), for the hint.
        command: &'static str,
        /// The scenario's full name.
        scenario: &'static str,
    },
    /// An event of a loaded schedule that the scenario would never play: at or after the end
    /// of the seed's safety phase, when every fault stops.
    #[error(
        "{path}: event {number} ({kind} at {at_ms} ms) is at or past the end of {scenario}'s safety phase for seed {seed} ({end_ms} ms), when every fault stops; move it earlier or drop it"
    )]
    FaultPastSafetyPhase {
        /// The schedule's file.
        path: String,
        /// The event's position in the file, from 1.
        number: usize,
        /// The event's kind, as written in the file (`crash`, `partition`, …).
        kind: &'static str,
        /// The event's time, in simulated milliseconds.
        at_ms: u64,
        /// The scenario's full name.
        scenario: &'static str,
        /// The seed whose safety phase it misses.
        seed: u64,
        /// The end of that safety phase, in simulated milliseconds.
        end_ms: u64,
    },
    /// A `hold` event naming a release trigger (`until`) or message kind (`message`) the
    /// scenario does not report: the hold would never end, or hold nothing.
    #[error(
        "{path}: event {number} (hold) {field} = \"{value}\": {}",
        if known.is_empty() && *field == "until" {
            format!("{scenario} reports no {what}s, so the hold would never end; drop the event")
        } else if known.is_empty() {
            format!("{scenario} names no {what}s; drop `{field}` (the hold then takes any message)")
        } else {
            format!("{scenario} reports the {what}s {}; name one of them", known.join(", "))
        }
    )]
    HoldNotReported {
        /// The file holding the event.
        path: String,
        /// The event's position in the file, from 1.
        number: usize,
        /// `until` or `message`.
        field: &'static str,
        /// The name as written.
        value: String,
        /// `release trigger` or `message kind`.
        what: &'static str,
        /// The scenario's full name.
        scenario: &'static str,
        /// The names it reports.
        known: &'static [&'static str],
    },
    /// `--history` for a scenario that records no client history.
    #[error(
        "{scenario} records no client history, so --history would be ignored: use it with a scenario that does (`{command} list` marks them)"
    )]
    NoClientHistory {
        /// The command serving the catalogue ([`Catalogue::command`]), for the hint.
        command: &'static str,
        /// The scenario's full name.
        scenario: &'static str,
    },
    /// `--plain-swarm` for a scenario (or a selection of them) that draws no swarm knobs, so
    /// that a plain run would be the same run.
    #[error(
        "{scenario} draws no swarm knobs (timing, fault points), so --plain-swarm would change nothing: use it with a swarm that does (raft::swarm_2c, raft::swarm_2d, kvraft::swarm_3b, shardkv::swarm_4b and their ports), or drop it"
    )]
    NoSwarmKnobs {
        /// The scenario's full name (for a selection: the filter).
        scenario: String,
    },
    /// `--scenario-file`-like options (run from a scenario file, save one, shrink) for a
    /// scenario that takes none.
    #[error(
        "{scenario} does not run from scenario files (only swarms do; `{command} list` marks them): use one that does"
    )]
    NoScenarioFile {
        /// The command serving the catalogue ([`Catalogue::command`]), for the hint.
        command: &'static str,
        /// The scenario's full name.
        scenario: &'static str,
    },
    /// A scenario file that cannot be read or parsed, or that does not fit its scenario.
    #[error("{path}: {message}")]
    ScenarioFile {
        /// The file.
        path: String,
        /// What is wrong, in one line.
        message: String,
    },
    /// A fault file that cannot be read, parsed or written.
    #[error(transparent)]
    Faults(#[from] FaultsError),
    /// A fault schedule's event naming a node no run of the scenario can have: a sharded
    /// cluster's name (`s100-0`, `ctrler0`, `leader@101`) where servers are `s0, s1, …`, or
    /// the reverse. (A name of the right form that a given seed's cluster lacks is skipped
    /// when the event fires: one schedule serves every cluster size.)
    #[error("{path}: event {number} ({kind}) names {target}, which no {scenario} run has: {forms}")]
    NodeNeverPresent {
        /// The schedule's file.
        path: String,
        /// The event's position in the file, from 1.
        number: usize,
        /// The event's kind, as written in the file.
        kind: &'static str,
        /// The name.
        target: String,
        /// The scenario's full name.
        scenario: &'static str,
        /// The names its runs have.
        forms: &'static str,
    },
    /// A seed file (`seeds/*.toml`) that cannot be read, parsed or written, or that does not
    /// fit the catalogue.
    #[error("{path}: {}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    SeedFile {
        /// The file.
        path: String,
        /// The line the problem is on, for TOML errors (1-based).
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

/// For a fault schedule's `name` in a scenario whose workload is `kind`: the names its runs
/// have, when `name` is of a form none of them can have (see
/// [`InputError::NodeNeverPresent`]); `None` when some run may have it.
fn foreign_name(kind: WorkloadKind, name: &Target) -> Option<&'static str> {
    use sim::faults::TargetForm;
    match (kind, name.form()) {
        (WorkloadKind::Sharded, Some(TargetForm::Server)) => {
            Some("its servers are s<gid>-<i> (s100-0, s100-1, …) and its controllers ctrler0, ctrler1, …")
        }
        (
            WorkloadKind::Proposals | WorkloadKind::ProposalsWithSnapshots | WorkloadKind::Clerks,
            Some(TargetForm::Sharded),
        ) => Some("its servers are s0, s1, …; s<gid>-<i>, ctrler<i> and role@<gid> name a sharded cluster's"),
        _ => None,
    }
}

/// The command a catalogue is served by when it names none ([`Catalogue::with_command`]).
pub const DEFAULT_COMMAND: &str = "cargo xtask";

impl InputError {
    /// The same error, a scenario file's check placed at the line of the key (or table) it
    /// names in `file`'s text (`sim::tomlfile::line_of_check`): `path: line 7: …`.
    fn located_in(self, file: &SpecFile) -> InputError {
        match self {
            InputError::ScenarioFile { path, message } if !message.starts_with("line ") => {
                let message = match sim::tomlfile::line_of_check(&file.text, &message) {
                    Some(n) => format!("line {n}: {message}"),
                    None => message,
                };
                InputError::ScenarioFile { path, message }
            }
            other => other,
        }
    }

    /// The same error, its hints naming `command` (the one serving the catalogue): a
    /// scenario's own checks do not know it, the catalogue's name it.
    pub fn for_command(self, command: &'static str) -> InputError {
        match self {
            InputError::NoFaultSchedule { scenario, .. } => InputError::NoFaultSchedule { scenario, command },
            InputError::NoClientHistory { scenario, .. } => InputError::NoClientHistory { scenario, command },
            InputError::NoScenarioFile { scenario, .. } => InputError::NoScenarioFile { scenario, command },
            InputError::NoMatch { filter, families, .. } => InputError::NoMatch { filter, families, command },
            InputError::NotOneScenario { name, example, .. } => InputError::NotOneScenario { name, example, command },
            InputError::UnknownBug { bug, family, known, .. } => InputError::UnknownBug { bug, family, known, command },
            other => other,
        }
    }
}

/// A fault schedule loaded from a file, with the file's path (for messages and for the
/// command line that reproduces a run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultFile {
    /// Where the schedule was read from.
    pub path: PathBuf,
    /// The schedule.
    pub schedule: FaultSchedule,
}

impl FaultFile {
    /// Reads and parses a schedule file.
    ///
    /// # Errors
    /// [`InputError::Faults`] when the file cannot be read or is not a valid schedule (the
    /// message names the file and line).
    pub fn load(path: &Path) -> Result<FaultFile, InputError> {
        Ok(FaultFile { path: path.to_path_buf(), schedule: FaultSchedule::load(path)? })
    }
}

/// Where a run leaves the fault schedule it played, for `--save-faults`: the schedule is
/// handed back to the caller, who writes it outside the run (a run does no file input or
/// output of its own, so it cannot fail for a reason outside (scenario, seed, build)).
/// Clones share one slot.
#[derive(Clone, Default)]
pub struct FaultRecorder(Arc<Mutex<Option<FaultSchedule>>>);

impl FaultRecorder {
    /// An empty recorder.
    pub fn new() -> FaultRecorder {
        FaultRecorder::default()
    }

    /// Called by a scenario with the schedule it is about to play.
    pub fn record(&self, schedule: &FaultSchedule) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(schedule.clone());
    }

    /// The recorded schedule, if the run got as far as choosing one.
    pub fn take(&self) -> Option<FaultSchedule> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl std::fmt::Debug for FaultRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultRecorder")
    }
}

/// Options of one run beyond (scenario, seed).
#[derive(Clone, Debug, Default)]
pub struct Opts {
    /// A planted bug of the scenario's family, by name.
    pub bug: Option<String>,
    /// A fault schedule to play instead of the one the seed draws (only for scenarios that
    /// take one: [`Scenario::takes_fault_schedule`]).
    pub faults: Option<FaultFile>,
    /// Receives the fault schedule the run played (only for scenarios that take one).
    pub record_faults: Option<FaultRecorder>,
    /// Print every panic inside the run with a backtrace on stderr (debugging only; the
    /// outcome is the same).
    pub show_panics: bool,
    /// Attach the run's client history to its report (`sim::attach`, in every form the
    /// scenario writes: for key/value runs the JSON form and Porcupine's key/value log), for
    /// `--history`. Only for scenarios that record one ([`Scenario::records_client_history`]).
    /// Output only: the run, its outcome and its trace are the same either way.
    pub attach_history: bool,
    /// A resolved scenario to run instead of the knobs the seed draws (only for scenarios
    /// that take scenario files: [`Scenario::takes_scenario_files`]).
    pub scenario_file: Option<SpecFile>,
    /// Receives the run's resolved scenario (only for scenarios that take scenario files).
    pub record_scenario: Option<SpecRecorder>,
    /// Swarm runs without their timing knobs and fault points (`crate::swarm::Knobs`): the
    /// search as it was before them, to measure what they add. Other scenarios ignore it.
    pub plain_swarm: bool,
    /// The running scenario's full name, set by [`run_scenario`] (empty outside it). A suite
    /// run under another family's name (`kvpaxos::basic_3a` is kvraft's `basic_3a` on Paxos)
    /// names the files it attaches after the scenario that ran, not the code it came from.
    pub scenario: &'static str,
}

impl Opts {
    /// The running scenario's name, or `default` (the name written in the scenario's code)
    /// when the run did not come through [`run_scenario`].
    pub fn scenario_or(&self, default: &'static str) -> &'static str {
        if self.scenario.is_empty() {
            default
        } else {
            self.scenario
        }
    }

    /// Options with only a planted bug.
    pub fn with_bug(bug: Option<&str>) -> Opts {
        Opts { bug: bug.map(str::to_string), ..Opts::default() }
    }
}

/// How a scenario takes fault schedules: the swarms play a schedule of timed events during a
/// safety phase whose length the seed draws, then stop every fault.
#[derive(Clone, Copy, Debug)]
pub struct FaultSupport {
    /// The end of the safety phase of the run with this seed, in simulated milliseconds: a
    /// schedule's events must come strictly before it (later ones would never be played).
    pub safety_phase_end_ms: fn(seed: u64) -> u64,
    /// The workload a scenario file for it must describe, when it takes scenario files
    /// (`crate::spec`): its whole resolved scenario as data.
    pub workload: Option<WorkloadKind>,
    /// The release triggers a `hold` event may wait for (its `until`): those the scenario
    /// registers and reports (`sim::net::register_triggers`; for the Raft testers
    /// `crate::raft::observer::TRIGGERS`). Empty: a hold is refused, it would never end.
    pub triggers: &'static [&'static str],
    /// The message kinds a `hold` event may pick (its `message`): those the family's
    /// classifier names (`sim::net::set_classifier`; for the Raft testers
    /// `crate::raft::observer::MESSAGE_KINDS`). Empty: only a hold of any message.
    pub message_kinds: &'static [&'static str],
}

/// One scenario: a name, what it does, a simulated-time budget and the body that makes a
/// cluster, acts and checks. Build one with [`Scenario::new`].
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Scenario {
    /// `family::name_lab`, e.g. `raft::figure8_unreliable_2c`.
    pub name: &'static str,
    /// One line for `list`.
    pub description: &'static str,
    /// Simulated-time budget; running out is a liveness failure.
    pub budget: Duration,
    /// The body, run inside the simulation with the run's options.
    pub run: fn(Opts) -> ScenarioFuture,
    /// Whether (and how) the scenario takes a fault schedule; `None` refuses `--faults`.
    pub faults: Option<FaultSupport>,
    /// Whether the scenario records a client history it can attach ([`Opts::attach_history`]);
    /// `false` refuses `--history`.
    pub client_history: bool,
    /// Whether the scenario draws swarm knobs (`crate::swarm::knobs`: timing and fault
    /// points) that [`Opts::plain_swarm`] turns off; `false` refuses `--plain-swarm`.
    pub knobs: bool,
    /// Whether its engine takes the swarm's timing knobs (`TestEngine::TAKES_TIMING`); a
    /// scenario file's `[timing]` is refused where it does not.
    pub timing_knobs: bool,
    /// Its engine's reach of each fault point against Raft's
    /// (`TestEngine::FAULT_POINT_REACH`): the swarm scales the drawn firing rates by it, and a
    /// scenario file enabling a point the engine never reaches (0) is refused.
    pub fault_point_reach: &'static [(sim::FaultPoint, u32)],
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Scenario {
    /// A scenario that takes no fault schedule. `name` must be `family::rest`; the family is
    /// the part before the first `::`.
    pub const fn new(
        name: &'static str,
        description: &'static str,
        budget: Duration,
        run: fn(Opts) -> ScenarioFuture,
    ) -> Scenario {
        Scenario {
            name,
            description,
            budget,
            run,
            faults: None,
            client_history: false,
            knobs: false,
            timing_knobs: false,
            fault_point_reach: &[],
        }
    }

    /// The same scenario, declared to play a fault schedule (given with `--faults`, drawn
    /// from the seed otherwise, written with `--save-faults`) during a safety phase ending at
    /// `safety_phase_end_ms(seed)`. Its body must honour [`Opts::faults`] and
    /// [`Opts::record_faults`] (the swarms do it with `crate::swarm::schedule_for`).
    pub const fn with_fault_schedule(self, safety_phase_end_ms: fn(seed: u64) -> u64) -> Scenario {
        Scenario {
            faults: Some(FaultSupport { safety_phase_end_ms, workload: None, triggers: &[], message_kinds: &[] }),
            ..self
        }
    }

    /// The same scenario, declared to run from a scenario file (`crate::spec`: shape,
    /// workload of this kind, safety phase, fault schedule) and to record its resolved one.
    /// Its body must honour [`Opts::scenario_file`] and [`Opts::record_scenario`] (the swarms
    /// do). Implies [`Scenario::with_fault_schedule`], which must come first.
    ///
    /// # Panics
    /// When the scenario does not take a fault schedule yet.
    pub const fn with_scenario_files(self, workload: WorkloadKind) -> Scenario {
        let Some(f) = self.faults else { panic!("with_scenario_files needs with_fault_schedule first") };
        Scenario { faults: Some(FaultSupport { workload: Some(workload), ..f }), ..self }
    }

    /// The same scenario, declared to report these release triggers and name these message
    /// kinds to the network's holds, so that a schedule's `hold` events may name them (and
    /// are refused naming others). Implies [`Scenario::with_fault_schedule`], which must come
    /// first.
    ///
    /// # Panics
    /// When the scenario does not take a fault schedule yet.
    pub const fn with_holds(
        self,
        triggers: &'static [&'static str],
        message_kinds: &'static [&'static str],
    ) -> Scenario {
        let Some(f) = self.faults else { panic!("with_holds needs with_fault_schedule first") };
        Scenario { faults: Some(FaultSupport { triggers, message_kinds, ..f }), ..self }
    }

    /// Whether the scenario runs from scenario files and records its resolved scenario.
    pub fn takes_scenario_files(&self) -> bool {
        self.faults.is_some_and(|f| f.workload.is_some())
    }

    /// The same scenario, declared to record a client history and attach it to its report
    /// when [`Opts::attach_history`] asks (the key/value testers do).
    pub const fn with_client_history(self) -> Scenario {
        Scenario { client_history: true, ..self }
    }

    /// The same scenario, declared to draw the swarm's knobs (timing and fault points,
    /// `crate::swarm::knobs`), which `--plain-swarm` turns off; `takes_timing` says whether
    /// its engine takes timing knobs (`TestEngine::TAKES_TIMING`) and `fault_point_reach` how
    /// often it reaches each fault point (`TestEngine::FAULT_POINT_REACH`); the body must call
    /// `crate::swarm::knobs` for the same engine.
    pub const fn with_swarm_knobs(
        self,
        takes_timing: bool,
        fault_point_reach: &'static [(sim::FaultPoint, u32)],
    ) -> Scenario {
        Scenario { knobs: true, timing_knobs: takes_timing, fault_point_reach, ..self }
    }

    /// Whether the scenario's engine takes the swarm's timing knobs.
    pub fn takes_timing_knobs(&self) -> bool {
        self.timing_knobs
    }

    /// Whether the scenario draws swarm knobs, so `--plain-swarm` changes it.
    pub fn draws_swarm_knobs(&self) -> bool {
        self.knobs
    }

    /// The same scenario under another name (`family::rest`), e.g. a suite run on a
    /// user's engine as a family of its own.
    pub const fn renamed(self, name: &'static str) -> Scenario {
        Scenario { name, ..self }
    }

    /// The family: the part of the name before the first `::`.
    pub fn family(&self) -> &'static str {
        self.name.split("::").next().unwrap_or(self.name)
    }

    /// Whether the scenario takes a fault schedule.
    pub fn takes_fault_schedule(&self) -> bool {
        self.faults.is_some()
    }

    /// Whether the scenario records a client history it can attach.
    pub fn records_client_history(&self) -> bool {
        self.client_history
    }

    /// Checks the output options for this scenario.
    ///
    /// # Errors
    /// [`InputError::NoClientHistory`] when the history is asked for and the scenario records
    /// none.
    pub fn check_outputs(&self, opts: &Opts) -> Result<(), InputError> {
        if opts.attach_history && !self.client_history {
            return Err(InputError::NoClientHistory { scenario: self.name, command: DEFAULT_COMMAND });
        }
        Ok(())
    }

    /// Checks the `hold` events of a schedule (`path`, for the message) against the triggers
    /// and message kinds the scenario reports ([`FaultSupport`]).
    fn check_holds(
        &self,
        support: &FaultSupport,
        path: &str,
        events: &[sim::faults::FaultEvent],
    ) -> Result<(), InputError> {
        for (i, e) in events.iter().enumerate() {
            let sim::faults::Fault::Hold { message, until, .. } = &e.fault else { continue };
            let refuse = |field, value: &str, what, known| InputError::HoldNotReported {
                path: path.to_string(),
                number: i + 1,
                field,
                value: value.to_string(),
                what,
                scenario: self.name,
                known,
            };
            if !support.triggers.contains(&until.as_str()) {
                return Err(refuse("until", until, "release trigger", support.triggers));
            }
            if let Some(m) = message {
                if !support.message_kinds.contains(&m.as_str()) {
                    return Err(refuse("message", m, "message kind", support.message_kinds));
                }
            }
        }
        Ok(())
    }

    /// Checks the fault options for this scenario and seed.
    ///
    /// # Errors
    /// [`InputError::NoFaultSchedule`] when a schedule is given or asked for and the scenario
    /// takes none; [`InputError::FaultPastSafetyPhase`] for the first event the run would
    /// never play.
    pub fn check_faults(&self, seed: u64, opts: &Opts) -> Result<(), InputError> {
        match self.faults.and_then(|f| f.workload) {
            None if opts.scenario_file.is_some() || opts.record_scenario.is_some() => {
                return Err(InputError::NoScenarioFile { scenario: self.name, command: DEFAULT_COMMAND });
            }
            Some(kind) => {
                if let Some(file) = &opts.scenario_file {
                    self.check_scenario_file(file, kind, opts).map_err(|e| e.located_in(file))?;
                }
            }
            None => {}
        }
        let Some(support) = self.faults else {
            if opts.faults.is_some() || opts.record_faults.is_some() {
                return Err(InputError::NoFaultSchedule { scenario: self.name, command: DEFAULT_COMMAND });
            }
            return Ok(());
        };
        if let Some(file) = &opts.faults {
            self.check_holds(&support, &file.path.display().to_string(), &file.schedule.events)?;
            if let Some(kind) = support.workload {
                for (i, ev) in file.schedule.events.iter().enumerate() {
                    for (_, t) in ev.fault.named_targets() {
                        if let Some(forms) = foreign_name(kind, t) {
                            return Err(InputError::NodeNeverPresent {
                                path: file.path.display().to_string(),
                                number: i + 1,
                                kind: ev.fault.kind(),
                                target: t.0.clone(),
                                scenario: self.name,
                                forms,
                            });
                        }
                    }
                }
            }
            let end_ms = (support.safety_phase_end_ms)(seed);
            if let Some((i, ev)) = file.schedule.events.iter().enumerate().find(|(_, e)| e.at_ms >= end_ms) {
                return Err(InputError::FaultPastSafetyPhase {
                    path: file.path.display().to_string(),
                    number: i + 1,
                    kind: ev.fault.kind(),
                    at_ms: ev.at_ms,
                    scenario: self.name,
                    seed,
                    end_ms,
                });
            }
        }
        Ok(())
    }

    /// The checks of a scenario file against this scenario (workload `kind`): its shape, its
    /// safety phase within the budget, knobs and holds this scenario can honour.
    fn check_scenario_file(&self, file: &SpecFile, kind: WorkloadKind, opts: &Opts) -> Result<(), InputError> {
        let refuse = |message: String| InputError::ScenarioFile { path: file.path.display().to_string(), message };
        if opts.faults.is_some() {
            return Err(refuse(
                "a scenario file holds its fault schedule: drop --faults, or edit the file's [[event]]s".into(),
            ));
        }
        file.spec.check(self.name, kind).map_err(refuse)?;
        // The liveness phase runs after the safety phase, inside the same budget:
        // a file that leaves it too little would fail the implementation for the
        // file's mistake. The swarms draw at most a quarter of their budget.
        let most_ms = self.budget.as_millis() as u64 / 2;
        if file.spec.safety_ms > most_ms {
            return Err(refuse(format!(
                "safety_ms = {} leaves too little of {}'s {}s simulated-time budget for the liveness phase after it: give at most {most_ms}",
                file.spec.safety_ms,
                self.name,
                self.budget.as_secs()
            )));
        }
        if file.spec.timing.is_some() && !self.timing_knobs {
            return Err(refuse(format!(
                "{}'s engine has no configurable timing, so the file's [timing] would change nothing: delete that table",
                self.name
            )));
        }
        if !file.spec.fault_points.is_empty() && !self.knobs {
            return Err(refuse(format!(
                "{} draws no fault points and enables none a file gives, so [fault_points] would change nothing: delete that table",
                self.name
            )));
        }
        let never = file.spec.fault_points.keys().find(|name| {
            sim::FaultPoint::from_name(name)
                .is_some_and(|p| crate::engine::fault_point_reach(self.fault_point_reach, p) == 0)
        });
        if let Some(name) = never {
            return Err(refuse(format!(
                "{}'s engine never reaches fault point {name} (it has no such message), so enabling it would change nothing: delete it from [fault_points]",
                self.name
            )));
        }
        let has_clerks = matches!(kind, WorkloadKind::Clerks | WorkloadKind::Sharded);
        let clientless = file.spec.fault_points.keys().find(|name| {
            sim::FaultPoint::from_name(name).is_some_and(|p| !has_clerks && crate::swarm::CLIENT_POINTS.contains(&p))
        });
        if let Some(name) = clientless {
            return Err(refuse(format!(
                "{} has no clerks, and only a clerk reaches fault point {name}, so enabling it would change nothing: delete it from [fault_points]",
                self.name
            )));
        }
        if let Some(support) = self.faults {
            self.check_holds(&support, &file.path.display().to_string(), &file.spec.events)?;
        }
        Ok(())
    }
}

/// A planted bug: a run-time switch that puts a classic mistake into the real code path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlantedBug {
    /// The name given to `--bug`, e.g. `commit-old-term`.
    pub name: &'static str,
    /// One line: what the mistake is.
    pub description: &'static str,
}

/// A family of scenarios and the planted bugs its nodes know. Build one with
/// [`Family::new`] and the `with_…` methods.
#[derive(Clone, Debug)]
pub struct Family {
    name: &'static str,
    bugs: Vec<PlantedBug>,
    scenarios: Vec<Scenario>,
    marks: Vec<(&'static str, &'static str)>,
}

impl Family {
    /// An empty family. `name` is the prefix of its scenarios' names: no `::`, no glob
    /// characters, not `all`.
    pub fn new(name: &'static str) -> Family {
        Family { name, bugs: Vec::new(), scenarios: Vec::new(), marks: Vec::new() }
    }

    /// Adds a planted bug (see [`PlantedBug`]).
    pub fn with_bug(mut self, name: &'static str, description: &'static str) -> Family {
        self.bugs.push(PlantedBug { name, description });
        self
    }

    /// Adds planted bugs given as (name, description) pairs.
    pub fn with_bugs(mut self, bugs: impl IntoIterator<Item = (&'static str, &'static str)>) -> Family {
        self.bugs.extend(bugs.into_iter().map(|(name, description)| PlantedBug { name, description }));
        self
    }

    /// Adds a scenario; its name must start with `<family>::`.
    pub fn with_scenario(mut self, scenario: Scenario) -> Family {
        self.scenarios.push(scenario);
        self
    }

    /// Adds scenarios, in listing order.
    pub fn with_scenarios(mut self, scenarios: impl IntoIterator<Item = Scenario>) -> Family {
        self.scenarios.extend(scenarios);
        self
    }

    /// Declares coverage marks (name, what it means) its scenarios can reach
    /// (`sim::mark`), so `sweep --coverage` names those a sweep never reached.
    pub fn with_marks(mut self, marks: impl IntoIterator<Item = (&'static str, &'static str)>) -> Family {
        for m in marks {
            if !self.marks.iter().any(|x| x.0 == m.0) {
                self.marks.push(m);
            }
        }
        self
    }

    /// Its declared coverage marks.
    pub fn marks(&self) -> &[(&'static str, &'static str)] {
        &self.marks
    }

    /// The family's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its planted bugs, in listing order.
    pub fn bugs(&self) -> &[PlantedBug] {
        &self.bugs
    }

    /// Its scenarios, in listing order.
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// Whether `bug` names one of its planted bugs.
    pub fn knows_bug(&self, bug: &str) -> bool {
        self.bugs.iter().any(|b| b.name == bug)
    }
}

/// Everything a command line serves: families of scenarios with their planted bugs, and
/// optionally runtime-free property tests. Build one with [`Catalogue::new`] and
/// [`Catalogue::with_family`]; this project's is [`crate::catalogue`].
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    families: Vec<Family>,
    property_tests: Vec<crate::prop::PropTest>,
    command: Option<&'static str>,
}

impl Catalogue {
    /// An empty catalogue.
    pub fn new() -> Catalogue {
        Catalogue::default()
    }

    /// Names the command that serves this catalogue, as its users type it (e.g.
    /// `"cargo student"` for a downstream crate's alias): its help and the `REPRODUCE WITH`
    /// lines of failing runs use it. `cargo xtask` when not set.
    pub fn with_command(mut self, command: &'static str) -> Catalogue {
        self.command = Some(command);
        self
    }

    /// The command that serves this catalogue (see [`Catalogue::with_command`]).
    pub fn command(&self) -> &'static str {
        self.command.unwrap_or(DEFAULT_COMMAND)
    }

    /// Adds a family after those already present (listing order).
    ///
    /// # Panics
    /// When the family breaks a naming rule, since a catalogue is written by a programmer,
    /// not typed by a user: its name is empty, `all`, or holds `::` or glob characters; a
    /// scenario's name does not start with `<family>::`; a family or scenario name is
    /// already taken; two of its bugs share a name.
    pub fn with_family(mut self, family: Family) -> Catalogue {
        let name = family.name;
        assert!(
            !name.is_empty() && name != "all" && !name.contains("::") && !name.contains(GLOB_CHARS),
            "family name {name:?}: must be non-empty, not 'all', without '::' or glob characters"
        );
        assert!(self.family(name).is_none(), "family {name} is added twice");
        for sc in &family.scenarios {
            assert!(
                sc.name.strip_prefix(name).is_some_and(|rest| rest.starts_with("::") && rest.len() > 2),
                "scenario {} of family {name} must be named {name}::<name>",
                sc.name
            );
            assert!(!sc.name.contains(GLOB_CHARS), "scenario name {} holds glob characters", sc.name);
            let taken = self.scenarios().chain(family.scenarios.iter()).filter(|s| s.name == sc.name).count();
            assert!(taken == 1, "scenario {} is declared twice", sc.name);
        }
        for (i, b) in family.bugs.iter().enumerate() {
            assert!(!family.bugs[..i].iter().any(|x| x.name == b.name), "family {name}: bug {} twice", b.name);
        }
        self.families.push(family);
        self
    }

    /// Adds runtime-free property tests, served by the `prop` command.
    pub fn with_property_tests(mut self, tests: impl IntoIterator<Item = crate::prop::PropTest>) -> Catalogue {
        self.property_tests.extend(tests);
        self
    }

    /// The families, in listing order.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The family called `name`.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Every scenario, in listing order.
    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario> {
        self.families.iter().flat_map(|f| f.scenarios.iter())
    }

    /// The property tests, in listing order.
    pub fn property_tests(&self) -> &[crate::prop::PropTest] {
        &self.property_tests
    }

    /// The scenarios a filter selects, in listing order.
    ///
    /// # Errors
    /// [`InputError::BadGlob`] for a malformed glob, [`InputError::NoMatch`] when nothing
    /// matches.
    pub fn select(&self, filter: &str) -> Result<Vec<Scenario>, InputError> {
        let f = Filter::parse(filter)?;
        let picked: Vec<Scenario> = self.scenarios().filter(|s| f.matches(s.name)).copied().collect();
        if picked.is_empty() {
            return Err(InputError::NoMatch {
                command: self.command(),
                filter: filter.to_string(),
                families: self.families.iter().map(|f| f.name).collect(),
            });
        }
        Ok(picked)
    }

    /// The scenario called exactly `name`.
    ///
    /// # Errors
    /// [`InputError::NotOneScenario`] when `name` is not one scenario's full name.
    pub fn scenario(&self, name: &str) -> Result<Scenario, InputError> {
        self.scenarios().find(|s| s.name == name).copied().ok_or_else(|| InputError::NotOneScenario {
            command: self.command(),
            name: name.to_string(),
            // The first of the nearest, in catalogue order: a misspelling gets its fix.
            example: self
                .scenarios()
                .min_by_key(|s| strsim::levenshtein(s.name, name))
                .map_or("family::name", |s| s.name),
        })
    }

    /// Checks that `bug` names a planted bug of every selected scenario's family.
    ///
    /// # Errors
    /// [`InputError::UnknownBug`] naming the first family that does not know it.
    pub fn check_bug(&self, scenarios: &[Scenario], bug: &str) -> Result<(), InputError> {
        for fam in &self.families {
            if scenarios.iter().any(|s| s.family() == fam.name) && !fam.knows_bug(bug) {
                return Err(InputError::UnknownBug {
                    command: self.command(),
                    bug: bug.to_string(),
                    family: fam.name,
                    known: fam.bugs.iter().map(|b| b.name).collect(),
                });
            }
        }
        Ok(())
    }

    /// The coverage marks declared by the families of `scenarios`, each once.
    pub fn marks_of(&self, scenarios: &[Scenario]) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<(&'static str, &'static str)> = Vec::new();
        for fam in &self.families {
            if scenarios.iter().any(|s| s.family() == fam.name) {
                for m in &fam.marks {
                    if !out.iter().any(|x| x.0 == m.0) {
                        out.push(*m);
                    }
                }
            }
        }
        out
    }

    /// Checks every option of one run: the planted bug, the fault options, the outputs.
    ///
    /// # Errors
    /// See [`Catalogue::check_bug`], [`Scenario::check_faults`] and
    /// [`Scenario::check_outputs`]; [`InputError::NoSwarmKnobs`] for `--plain-swarm` on a
    /// scenario that draws no swarm knobs.
    pub fn check_opts(&self, sc: &Scenario, seed: u64, opts: &Opts) -> Result<(), InputError> {
        if let Some(b) = &opts.bug {
            self.check_bug(std::slice::from_ref(sc), b)?;
        }
        let named = |e: InputError| e.for_command(self.command());
        sc.check_outputs(opts).map_err(named)?;
        // A command's --plain-swarm where it would change nothing is refused here, where the
        // command lines check their input; a library caller may pass it for a whole suite
        // (the scenarios that draw no knobs ignore it), so `run_scenario` does not insist.
        if opts.plain_swarm && !sc.knobs {
            return Err(InputError::NoSwarmKnobs { scenario: sc.name.to_string() });
        }
        let knob_free =
            opts.scenario_file.as_ref().filter(|f| f.spec.timing.is_none() && f.spec.fault_points.is_empty());
        if let (true, Some(f)) = (opts.plain_swarm, knob_free) {
            return Err(InputError::ScenarioFile {
                path: f.path.display().to_string(),
                message: "gives no [timing] or [fault_points], so --plain-swarm would change nothing: drop it".into(),
            });
        }
        sc.check_faults(seed, opts).map_err(named)
    }
}

/// Characters that make a filter a glob.
const GLOB_CHARS: [char; 4] = ['*', '?', '[', '{'];

/// A parsed scenario filter: `all`, a family, one full name, or a glob over full names
/// (`*`, `?`, `[…]`, `{a,b}`; matched by `globset`).
#[derive(Clone, Debug)]
pub enum Filter {
    /// Everything.
    All,
    /// Every name whose family (the part before the first `::`) is this.
    Family(String),
    /// Exactly this name.
    Name(String),
    /// Every name the glob matches as a whole.
    Glob(globset::GlobMatcher),
}

impl Filter {
    /// Parses a filter.
    ///
    /// # Errors
    /// [`InputError::BadGlob`] when the filter holds glob characters but is no valid glob.
    pub fn parse(filter: &str) -> Result<Filter, InputError> {
        Ok(if filter == "all" {
            Filter::All
        } else if filter.contains(GLOB_CHARS) {
            let glob = globset::Glob::new(filter)
                .map_err(|e| InputError::BadGlob { filter: filter.to_string(), reason: e.kind().to_string() })?;
            Filter::Glob(glob.compile_matcher())
        } else if filter.contains("::") {
            Filter::Name(filter.to_string())
        } else {
            Filter::Family(filter.to_string())
        })
    }

    /// Whether the filter selects `name`.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Family(f) => name.split("::").next() == Some(f.as_str()),
            Filter::Name(n) => name == n,
            Filter::Glob(g) => g.is_match(name),
        }
    }
}

/// The scenarios of this project's catalogue that `filter` selects (see
/// [`Catalogue::select`]).
///
/// # Errors
/// As [`Catalogue::select`].
pub fn select(filter: &str) -> Result<Vec<Scenario>, InputError> {
    crate::catalogue().select(filter)
}

/// Every scenario of this project's catalogue, in listing order.
pub fn all() -> Vec<Scenario> {
    crate::catalogue().scenarios().copied().collect()
}

/// Runs one scenario under one seed, on a fresh OS thread (see `sim::run`).
///
/// # Panics
/// When the fault or output options do not fit the scenario ([`Scenario::check_faults`],
/// [`Scenario::check_outputs`]): callers
/// check input first ([`Catalogue::check_opts`]) and refuse it, so bad input never becomes a
/// run's outcome.
pub fn run_scenario(
    sc: &Scenario,
    seed: u64,
    opts: &Opts,
    trace: TraceMode,
    dispatch: Option<tracing::Dispatch>,
) -> RunReport {
    if let Err(e) = sc.check_faults(seed, opts).and_then(|_| sc.check_outputs(opts)) {
        panic!("run_scenario: options not checked before the run: {e}");
    }
    let run = sc.run;
    let opts = Opts { scenario: sc.name, ..opts.clone() };
    let cfg =
        RunConfig { seed, trace, budget: sc.budget, dispatch, show_panics: opts.show_panics, bug: opts.bug.clone() };
    sim::run(cfg, move || run(opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::faults::{Fault, FaultEvent};

    #[test]
    fn a_catalogue_names_its_command_in_reproduce_lines() {
        let opts = Opts::with_bug(Some("vote-not-persisted"));
        let ours = crate::catalogue();
        assert_eq!(ours.command(), "cargo xtask");
        let line = crate::seeds::reproduce_command(ours.command(), "raft::swarm_2c", 7, &Opts::default());
        assert_eq!(line, "cargo xtask replay raft::swarm_2c --seed 7");
        let theirs = Catalogue::new().with_command("cargo student");
        let line = crate::seeds::reproduce_command(theirs.command(), "student::vote_amnesia_2c", 1, &opts);
        assert_eq!(line, "cargo student replay student::vote_amnesia_2c --seed 1 --bug vote-not-persisted");
    }

    #[test]
    fn filters_select_by_family_name_and_glob() {
        let cat = crate::catalogue();
        let mr = cat.select("mapreduce").unwrap();
        assert_eq!(mr.len(), 8, "the course script's seven tests and mapreduce::swarm");
        assert!(mr.iter().all(|s| s.name.starts_with("mapreduce::")));
        assert_eq!(cat.select("mapreduce::crash").unwrap().len(), 1);
        assert_eq!(cat.select("mapreduce::*_parallelism").unwrap().len(), 2);
        assert_eq!(cat.select("all").unwrap().len(), cat.scenarios().count());
        assert!(cat.select("mapred").is_err(), "a family is matched whole, not as a string prefix");
        assert!(cat.select("nosuch::thing").unwrap_err().to_string().contains("no scenario matches"));
        assert!(cat.select("raft::*_2c").unwrap().iter().all(|s| s.name.starts_with("raft::")));
        assert_eq!(cat.select("mapreduce::{wc,crash}").unwrap().len(), 2, "globset alternation");
        assert_eq!(cat.select("mapreduce::[wc]?").unwrap().len(), 1, "globset classes");
        let bad = cat.select("raft::[unclosed").unwrap_err();
        assert!(matches!(bad, InputError::BadGlob { .. }), "{bad}");
        assert!(!bad.to_string().contains('\n'));
        let names: Vec<&str> = cat.scenarios().map(|s| s.name).collect();
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(names.len(), dedup.len(), "scenario names are unique");
        assert!(cat.check_bug(&mr, "no-reissue").is_ok());
        assert!(cat.check_bug(&mr, "no-such-bug").unwrap_err().to_string().contains("known bugs are"));
        assert_eq!(cat.scenario("mapreduce::wc").unwrap().name, "mapreduce::wc");
        assert!(matches!(cat.scenario("mapreduce"), Err(InputError::NotOneScenario { .. })));
        let typo = cat.scenario("raft::figure8_unreliable_2x").unwrap_err().to_string();
        assert!(typo.contains("such as raft::figure8_unreliable_2c"), "{typo}");
    }

    fn body(_: Opts) -> ScenarioFuture {
        Box::pin(async { Ok(()) })
    }

    #[test]
    fn a_downstream_catalogue_is_built_from_families_and_checked() {
        let cat = Catalogue::new().with_family(
            Family::new("register")
                .with_bug("stale-read", "the backup answers reads")
                .with_scenario(Scenario::new("register::basic", "one client", Duration::from_secs(5), body))
                .with_scenario(
                    Scenario::new("register::swarm", "faults", Duration::from_secs(5), body)
                        .with_fault_schedule(|seed| 1000 + seed),
                ),
        );
        assert_eq!(cat.select("register").unwrap().len(), 2);
        assert_eq!(cat.families()[0].bugs()[0].name, "stale-read");
        let swarm = cat.scenario("register::swarm").unwrap();
        assert!(swarm.takes_fault_schedule() && !cat.scenario("register::basic").unwrap().takes_fault_schedule());
        assert!(cat.check_opts(&swarm, 1, &Opts::with_bug(Some("stale-read"))).is_ok());
        assert!(cat.check_opts(&swarm, 1, &Opts::with_bug(Some("nope"))).is_err());
    }

    #[test]
    fn a_downstream_catalogues_hints_name_its_own_command() {
        // Before, `cargo lab run nope` answered "see `cargo xtask list`", a command the lab's
        // users do not have.
        let cat = Catalogue::new().with_command("cargo lab").with_family(
            Family::new("lab")
                .with_scenario(Scenario::new("lab::basic", "one client", Duration::from_secs(5), body))
                .with_scenario(Scenario::new("lab::other", "two", Duration::from_secs(5), body).with_client_history()),
        );
        let basic = cat.scenario("lab::basic").unwrap();
        let faults = FaultFile { path: "f.toml".into(), schedule: FaultSchedule::default() };
        let history = Opts { attach_history: true, ..Opts::default() };
        let errors = [
            cat.select("nope").unwrap_err(),
            cat.scenario("lab").unwrap_err(),
            cat.check_bug(&[basic], "stale-read").unwrap_err(),
            cat.check_opts(&basic, 0, &Opts { faults: Some(faults), ..Opts::default() }).unwrap_err(),
            cat.check_opts(&basic, 0, &history).unwrap_err(),
            cat.check_opts(
                &basic,
                0,
                &Opts { record_scenario: Some(SpecRecorder::new("lab::basic")), ..Opts::default() },
            )
            .unwrap_err(),
        ];
        for e in errors {
            let text = e.to_string();
            assert!(text.contains("`cargo lab list") && !text.contains("xtask"), "{text}");
        }
        assert!(cat.check_bug(&[basic], "x").unwrap_err().to_string().contains("it has none"));
    }

    #[test]
    #[should_panic(expected = "must be named register::<name>")]
    fn a_scenario_outside_its_family_is_refused() {
        let _ = Catalogue::new().with_family(Family::new("register").with_scenario(Scenario::new(
            "raft::x",
            "",
            Duration::from_secs(1),
            body,
        )));
    }

    #[test]
    #[should_panic(expected = "declared twice")]
    fn a_scenario_name_is_taken_once() {
        let sc = Scenario::new("register::x", "", Duration::from_secs(1), body);
        let _ = Catalogue::new().with_family(Family::new("register").with_scenario(sc).with_scenario(sc));
    }

    fn schedule_at(at: &[u64]) -> FaultFile {
        FaultFile {
            path: PathBuf::from("f.toml"),
            schedule: FaultSchedule {
                events: at.iter().map(|&at_ms| FaultEvent { at_ms, fault: Fault::Heal }).collect(),
            },
        }
    }

    #[test]
    fn fault_options_are_refused_by_scenarios_without_a_schedule() {
        let cat = crate::catalogue();
        let plain = cat.scenario("raft::initial_election_2a").unwrap();
        let with_file = Opts { faults: Some(schedule_at(&[5])), ..Opts::default() };
        let err = cat.check_opts(&plain, 0, &with_file).unwrap_err();
        assert_eq!(err, InputError::NoFaultSchedule { scenario: "raft::initial_election_2a", command: "cargo xtask" });
        let saving = Opts { record_faults: Some(FaultRecorder::new()), ..Opts::default() };
        assert!(cat.check_opts(&plain, 0, &saving).is_err());
        for name in ["raft::swarm_2c", "raft::swarm_2d", "kvraft::swarm_3b"] {
            let sc = cat.scenario(name).unwrap();
            assert!(cat.check_opts(&sc, 0, &with_file).is_ok(), "{name} takes a schedule");
            assert!(cat.check_opts(&sc, 0, &saving).is_ok());
        }
    }

    #[test]
    fn an_event_past_the_safety_phase_is_refused_naming_it_and_the_phase_end() {
        let sc = crate::catalogue().scenario("raft::swarm_2c").unwrap();
        let end = (sc.faults.unwrap().safety_phase_end_ms)(7);
        assert!((10_000..30_000).contains(&end));
        assert!(sc.check_faults(7, &Opts { faults: Some(schedule_at(&[0, end - 1])), ..Opts::default() }).is_ok());
        let err = sc.check_faults(7, &Opts { faults: Some(schedule_at(&[0, 5, end])), ..Opts::default() }).unwrap_err();
        assert_eq!(
            err,
            InputError::FaultPastSafetyPhase {
                path: "f.toml".into(),
                number: 3,
                kind: "heal",
                at_ms: end,
                scenario: "raft::swarm_2c",
                seed: 7,
                end_ms: end
            }
        );
        let text = err.to_string();
        assert!(text.contains("event 3 (heal at") && text.contains(&format!("({end} ms)")), "{text}");
    }

    #[test]
    #[should_panic(expected = "options not checked")]
    fn running_with_unchecked_fault_options_panics_in_the_caller_not_in_the_run() {
        let plain = crate::catalogue().scenario("raft::initial_election_2a").unwrap();
        run_scenario(&plain, 0, &Opts { faults: Some(schedule_at(&[5])), ..Opts::default() }, TraceMode::Hash, None);
    }

    #[test]
    fn plain_swarm_is_refused_where_no_knobs_are_drawn() {
        let cat = crate::catalogue();
        let plain = Opts { plain_swarm: true, ..Opts::default() };
        for name in [
            "raft::swarm_2c",
            "raft::swarm_2d",
            "kvraft::swarm_3b",
            "shardkv::swarm_4b",
            "kvpaxos::swarm_3b",
            "shardkv_paxos::swarm_4b",
        ] {
            let sc = cat.scenario(name).unwrap();
            assert!(sc.draws_swarm_knobs(), "{name}");
            assert!(cat.check_opts(&sc, 0, &plain).is_ok(), "{name}");
        }
        for name in ["raft::basic_agree_2b", "mapreduce::swarm", "kvraft::basic_3a"] {
            let sc = cat.scenario(name).unwrap();
            assert!(!sc.draws_swarm_knobs(), "{name}");
            assert!(matches!(cat.check_opts(&sc, 0, &plain), Err(InputError::NoSwarmKnobs { .. })), "{name}");
        }
    }
}

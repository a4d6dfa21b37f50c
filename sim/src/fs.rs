//! A shared simulated file system for MapReduce: whole-file reads, appends, and an atomic
//! rename, so a worker that dies mid-write leaves no visible partial file — provided it
//! writes to a temporary name and renames, as the course's hints ask.
//!
//! Files live in the world, outside every node, so they survive crashes. Writes from a
//! crashed instance are ignored. Every mutation is traced (path, length, content hash) and
//! shown to the run's watchers, which checks use to see what a reader could observe.

use crate::failure::Failure;
use crate::node::NodeCtx;
use crate::trace::{hash_bytes, Kind};
use crate::world::{with, Kernel};
use std::collections::BTreeMap;

/// A mutation, as watchers see it.
#[derive(Debug)]
pub enum FsOp<'a> {
    /// A file was created or truncated to empty.
    Create,
    /// These bytes were appended to the file.
    Append(&'a [u8]),
    /// The file was renamed into place; the watched path is the destination.
    Rename {
        /// The path the file had before.
        from: &'a str,
    },
    /// The file was removed.
    Remove,
}

/// A watcher sees every mutation with the visible content of `path` afterwards
/// (`None` once removed) and may fail the run.
pub type Watcher = Box<dyn FnMut(&str, &FsOp<'_>, Option<&[u8]>) -> Option<Failure>>;

/// Read access to the files at one instant, for exit watchers.
pub struct FsView<'a>(&'a BTreeMap<String, Vec<u8>>);

impl FsView<'_> {
    /// The visible content of `path`, `None` if there is no such file.
    pub fn read(&self, path: &str) -> Option<&[u8]> {
        self.0.get(path).map(|v| v.as_slice())
    }
    /// Visible files whose names start with `prefix`, in order, with their contents.
    pub fn list(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        self.0
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// An exit watcher sees each process that exits by itself (its id and name), with the
/// files at that instant. It runs inside the world: it must not call back into `sim`.
pub type ExitWatcher = Box<dyn FnMut(crate::NodeId, &str, FsView<'_>)>;

/// The files and their watchers. Driven by the world with the kernel as an explicit
/// argument (for the trace, node names and the failure signal).
#[derive(Default)]
pub(crate) struct FsState {
    files: BTreeMap<String, Vec<u8>>,
    watchers: Vec<Watcher>,
    exit_watchers: Vec<ExitWatcher>,
}

impl FsState {
    /// Shows a process's own exit to the exit watchers.
    pub(crate) fn notify_exit(&mut self, k: &Kernel, node: crate::NodeId) {
        for w in self.exit_watchers.iter_mut() {
            w(node, &k.nodes[node.index()].name, FsView(&self.files));
        }
    }

    /// Traces a mutation and shows it to the watchers; a watcher's failure fails the run.
    fn mutated(&mut self, k: &mut Kernel, ctx: NodeCtx, path: &str, op: FsOp<'_>) {
        let content = self.files.get(path);
        let (len, h) = content.map(|c| (c.len() as u64, hash_bytes(c))).unwrap_or((u64::MAX, 0));
        let code = match op {
            FsOp::Create => 1,
            FsOp::Append(_) => 2,
            FsOp::Rename { .. } => 3,
            FsOp::Remove => 4,
        };
        let ph = hash_bytes(path.as_bytes());
        k.record(Kind::Fs, ctx.id.0 as u64, [ph ^ code, len, h], |_| match &op {
            FsOp::Create => format!("create {path}"),
            FsOp::Append(b) => format!("append {path} +{}B -> {len}B", b.len()),
            FsOp::Rename { from } => format!("rename {from} -> {path} ({len}B h={:08x})", h as u32),
            FsOp::Remove => format!("remove {path}"),
        });
        let content = self.files.get(path).map(|v| v.as_slice());
        let mut failures = Vec::new();
        for w in self.watchers.iter_mut() {
            if let Some(f) = w(path, &op, content) {
                failures.push(f);
            }
        }
        for f in failures {
            k.set_failure(f);
        }
    }
}

impl NodeCtx {
    /// Creates (or truncates) a file; it is visible at once, empty.
    pub fn fs_create(&self, path: &str) {
        with(|w| {
            if w.kernel.is_current(*self) {
                w.fs.files.insert(path.to_string(), Vec::new());
                w.fs.mutated(&mut w.kernel, *self, path, FsOp::Create);
            }
        })
    }

    /// Appends to a file (creating it if absent); the bytes are visible at once.
    pub fn fs_append(&self, path: &str, bytes: &[u8]) {
        with(|w| {
            if w.kernel.is_current(*self) {
                w.fs.files.entry(path.to_string()).or_default().extend_from_slice(bytes);
                w.fs.mutated(&mut w.kernel, *self, path, FsOp::Append(bytes));
            }
        })
    }

    /// Atomically renames `from` to `to`, replacing `to`. Returns false if `from` is absent.
    pub fn fs_rename(&self, from: &str, to: &str) -> bool {
        with(|w| {
            if !w.kernel.is_current(*self) {
                return false;
            }
            match w.fs.files.remove(from) {
                Some(data) => {
                    w.fs.files.insert(to.to_string(), data);
                    w.fs.mutated(&mut w.kernel, *self, to, FsOp::Rename { from });
                    true
                }
                None => false,
            }
        })
    }

    /// Removes a file if present.
    pub fn fs_remove(&self, path: &str) {
        with(|w| {
            if w.kernel.is_current(*self) && w.fs.files.remove(path).is_some() {
                w.fs.mutated(&mut w.kernel, *self, path, FsOp::Remove);
            }
        })
    }
}

/// Reads a whole file as it is visible now.
pub fn read(path: &str) -> Option<Vec<u8>> {
    with(|w| w.fs.files.get(path).cloned())
}

/// Whether a file is visible.
pub fn exists(path: &str) -> bool {
    with(|w| w.fs.files.contains_key(path))
}

/// Visible file names starting with `prefix`, in order.
pub fn list(prefix: &str) -> Vec<String> {
    with(|w| {
        w.fs.files
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    })
}

/// Writes a file directly (the scenario's own setup, e.g. input files).
pub fn put(path: &str, bytes: Vec<u8>) {
    with(|w| {
        w.fs.files.insert(path.to_string(), bytes);
    })
}

/// Installs a watcher of every later mutation. It runs inside the world: it must not call
/// back into `sim`; it returns a failure to end the run.
pub fn watch(w: Watcher) {
    with(|world| world.fs.watchers.push(w));
}

/// Installs a watcher of process exits (not crashes).
pub fn watch_exits(w: ExitWatcher) {
    with(|world| world.fs.exit_watchers.push(w));
}

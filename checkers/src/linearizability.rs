//! Porcupine-style linearizability checking (in progress).

//! Where traces are compiled: on the calling thread (the default), or on a
//! background thread (`Config::jit_background`, `--jit-background`; never
//! for the dumps), so the interpreter keeps running the loop while LLVM
//! works on it.
//! Owns the compile thread and its channels. Knows nothing of the code cache,
//! the VM or the recorder: an optimised trace goes in, machine code comes out,
//! and `JitState` decides what to do with it.
//!
//! The thread keeps only its target machine between jobs: each job builds its
//! own LLVM context (`backend::compile_linked`) and hands the result back whole.
//! It is started on the first job and joined when the `Compiler` is dropped,
//! after the job in hand (queued ones are skipped), so no LLVM code is still
//! running when the process tears LLVM's globals down.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, SendError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use vela_ir::Trace;

use super::backend::{self, CompiledTrace, Linkage, Merge};

/// One trace to compile.
pub struct Job {
    /// Chosen by the caller; comes back in `Done::id`.
    pub id: u64,
    pub trace: Trace,
    pub name: String,
    pub linkage: Linkage,
    /// Keep the optimised module for `--dump=llvm|asm`.
    pub keep_ir: bool,
    /// Side traces to compile into `trace` (`backend::compile_merged`).
    pub merges: Vec<Merge>,
}

// SAFETY: `Linkage` (the trace's, and each merged side trace's) holds
// addresses of counter and link cells and of the native-call area that only
// the VM's thread reads or writes; the compile thread only bakes the
// numbers into machine code and never dereferences them. The rest of a job
// is plain data.
unsafe impl Send for Job {}

/// A finished job.
pub struct Done {
    pub id: u64,
    /// The trace that was compiled, handed back.
    pub trace: Trace,
    pub code: Result<CompiledTrace, String>,
    /// Wall-clock milliseconds the compile took on its thread.
    pub ms: f64,
    /// LLVM's one-time start-up, if this job paid it.
    pub llvm_init_ms: Option<f64>,
}

/// Compiles jobs, now or in the background.
pub struct Compiler {
    background: bool,
    worker: Option<Worker>,
    /// Results not yet collected (the synchronous mode's, and any the
    /// worker sent while `finished` was draining).
    ready: VecDeque<Done>,
    llvm_ready: bool,
}

struct Worker {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Compiler {
    pub fn new(background: bool) -> Compiler {
        Compiler { background, worker: None, ready: VecDeque::new(), llvm_ready: false }
    }

    /// Whether jobs run on their own thread.
    pub fn is_background(&self) -> bool {
        self.background
    }

    /// Compiles `job`: at once in the synchronous mode, else queued for the
    /// compile thread. Either way the result comes from `finished`.
    pub fn submit(&mut self, job: Job) {
        if self.background && self.worker.is_none() {
            self.worker = Worker::spawn();
            // No thread could be started: compile here from now on.
            self.background = self.worker.is_some();
        }
        let job = match self.worker.as_ref().and_then(|w| w.jobs.as_ref()) {
            Some(queue) if self.background => match queue.send(job) {
                Ok(()) => return,
                // The thread is gone (short of a bug in LLVM it cannot
                // panic): compile here from now on.
                Err(SendError(job)) => {
                    self.background = false;
                    job
                }
            },
            _ => job,
        };
        let done = compile(job, &mut self.llvm_ready);
        self.ready.push_back(done);
    }

    /// A finished job, if there is one; never waits.
    pub fn finished(&mut self) -> Option<Done> {
        if self.ready.is_empty() {
            if let Some(w) = &self.worker {
                while let Ok(d) = w.done.try_recv() {
                    self.ready.push_back(d);
                }
            }
        }
        self.ready.pop_front()
    }
}

impl Worker {
    fn spawn() -> Option<Worker> {
        let (jobs, inbox) = channel::<Job>();
        let (outbox, done) = channel::<Done>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vela-jit".into())
            // LLVM's code generator recurses; the main thread's 8 MiB is
            // what it was measured with.
            .stack_size(8 << 20)
            .spawn(move || {
                let mut llvm_ready = false;
                while let Ok(job) = inbox.recv() {
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    if outbox.send(compile(job, &mut llvm_ready)).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Worker { jobs: Some(jobs), done, stop, thread: Some(thread) })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Closing the queue ends the thread's loop once the job in hand is done.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn compile(job: Job, llvm_ready: &mut bool) -> Done {
    let mut llvm_init_ms = None;
    if !*llvm_ready {
        let t = Instant::now();
        // An error here resurfaces from `compile_linked` and fails the job.
        let _ = backend::warm_up();
        llvm_init_ms = Some(t.elapsed().as_secs_f64() * 1e3);
        *llvm_ready = true;
    }
    let started = Instant::now();
    let code = backend::compile_merged(&job.trace, &job.name, Some(job.linkage), &job.merges, job.keep_ir);
    Done { id: job.id, trace: job.trace, code, ms: started.elapsed().as_secs_f64() * 1e3, llvm_init_ms }
}

//! The work queue of a controller: one entry per object, two lanes — events that
//! carry progress (a backend's status, a kubeconfig source) go ahead of initial, periodic and
//! bulk work — an object is never reconciled twice at once (a trigger that arrives while it
//! runs re-queues it once, in the better of the lanes seen), and timed requeues keep only the
//! earliest deadline. Pure data: the async driver lives in [`super::runtime`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// Where a trigger queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// Progress of an object already being worked on: a backend object's status changed, a
    /// Secret the kubeconfig step reads appeared or changed. Served first.
    Fast,
    /// Everything else: the primary object's own changes, the owner Cluster, the RGD fan-out,
    /// resyncs and retries.
    Normal,
}

impl Lane {
    fn index(self) -> usize {
        match self {
            Lane::Fast => 0,
            Lane::Normal => 1,
        }
    }

    /// The more urgent of two lanes.
    fn best(self, other: Lane) -> Lane {
        self.min(other)
    }
}

/// What a reconcile asks of the queue afterwards: run again after a delay, or wait for a
/// trigger (the runtime turns that into the sync-period requeue, [CP-53]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile again after `duration` unless a trigger comes first.
    pub const fn requeue(duration: Duration) -> Self {
        Self {
            requeue_after: Some(duration),
        }
    }

    /// Reconcile again only when a watched change arrives.
    pub const fn await_change() -> Self {
        Self {
            requeue_after: None,
        }
    }

    pub const fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// The queue of one controller over item type `T` (an object reference).
#[derive(Debug)]
pub struct WorkQueue<T> {
    /// Waiting items per lane, oldest first. An entry whose item moved to a better lane (or
    /// already ran) stays behind as a stale entry and is skipped when reached.
    lanes: [VecDeque<T>; 2],
    /// The lane each waiting item is queued in.
    queued: HashMap<T, Lane>,
    running: HashSet<T>,
    /// Items triggered while running, with the best lane of those triggers.
    dirty: HashMap<T, Lane>,
    /// Timed requeues, earliest first (the counter keeps equal instants apart).
    timers: BTreeMap<(Instant, u64), T>,
    deadline_of: HashMap<T, (Instant, u64)>,
    sequence: u64,
}

impl<T> Default for WorkQueue<T> {
    fn default() -> Self {
        Self {
            lanes: [VecDeque::new(), VecDeque::new()],
            queued: HashMap::new(),
            running: HashSet::new(),
            dirty: HashMap::new(),
            timers: BTreeMap::new(),
            deadline_of: HashMap::new(),
            sequence: 0,
        }
    }
}

impl<T: Clone + Eq + Hash> WorkQueue<T> {
    /// Queues `item` to run now in `lane`; returns whether a worker has something new to take.
    pub fn add(&mut self, item: T, lane: Lane) -> bool {
        if self.running.contains(&item) {
            let entry = self.dirty.entry(item).or_insert(lane);
            *entry = entry.best(lane);
            return false;
        }
        match self.queued.get(&item) {
            Some(queued) if *queued <= lane => false,
            _ => {
                self.queued.insert(item.clone(), lane);
                self.lanes[lane.index()].push_back(item);
                true
            }
        }
    }

    /// Queues `item` to run at `at` (in the normal lane) unless an earlier run is already
    /// scheduled; returns whether the earliest deadline of the queue moved earlier.
    pub fn add_at(&mut self, item: T, at: Instant) -> bool {
        if let Some(existing) = self.deadline_of.get(&item) {
            if existing.0 <= at {
                return false;
            }
            let existing = *existing;
            self.timers.remove(&existing);
        }
        let earliest_before = self.next_deadline();
        self.sequence += 1;
        let key = (at, self.sequence);
        self.timers.insert(key, item.clone());
        self.deadline_of.insert(item, key);
        earliest_before.is_none_or(|e| at < e)
    }

    /// Moves the timed requeues due at `now` into the normal lane; returns how many became
    /// runnable.
    pub fn release_due(&mut self, now: Instant) -> usize {
        let mut released = 0;
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let item = entry.remove();
            self.deadline_of.remove(&item);
            if self.add(item, Lane::Normal) {
                released += 1;
            }
        }
        released
    }

    /// The earliest timed requeue.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// The next item to reconcile, fast lane first, and marks it running; its timed requeue
    /// is dropped (the reconcile decides the next one).
    pub fn take(&mut self) -> Option<T> {
        for lane in [Lane::Fast, Lane::Normal] {
            while let Some(item) = self.lanes[lane.index()].pop_front() {
                if self.queued.get(&item) != Some(&lane) {
                    continue;
                }
                self.queued.remove(&item);
                if let Some(key) = self.deadline_of.remove(&item) {
                    self.timers.remove(&key);
                }
                self.running.insert(item.clone());
                return Some(item);
            }
        }
        None
    }

    /// Marks `item` finished; a trigger that arrived meanwhile queues it again. Returns whether
    /// it was queued again.
    pub fn done(&mut self, item: &T) -> bool {
        self.running.remove(item);
        match self.dirty.remove(item) {
            Some(lane) => self.add(item.clone(), lane),
            None => false,
        }
    }

    /// Items waiting to run now, per lane (fast, normal).
    pub fn depth(&self) -> (usize, usize) {
        let fast = self.queued.values().filter(|l| **l == Lane::Fast).count();
        (fast, self.queued.len() - fast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(queue: &mut WorkQueue<&'static str>) -> Vec<&'static str> {
        let mut order = Vec::new();
        while let Some(item) = queue.take() {
            queue.done(&item);
            order.push(item);
        }
        order
    }

    /// The fast lane is served before older normal work; each lane is FIFO.
    #[test]
    fn fast_lane_goes_first() {
        let mut queue = WorkQueue::default();
        for item in ["a", "b", "c"] {
            assert!(queue.add(item, Lane::Normal));
        }
        assert!(queue.add("ready", Lane::Fast));
        assert!(queue.add("source", Lane::Fast));
        assert_eq!(drain(&mut queue), ["ready", "source", "a", "b", "c"]);
    }

    /// One entry per object; a fast trigger promotes a queued normal one, the stale
    /// normal entry is skipped; a normal trigger never demotes.
    #[test]
    fn deduplicates_and_promotes() {
        let mut queue = WorkQueue::default();
        queue.add("a", Lane::Normal);
        queue.add("b", Lane::Normal);
        assert!(!queue.add("a", Lane::Normal));
        assert!(queue.add("b", Lane::Fast));
        assert!(!queue.add("b", Lane::Normal));
        assert_eq!(queue.depth(), (1, 1));
        assert_eq!(drain(&mut queue), ["b", "a"]);
    }

    /// An object is never handed out twice at once; triggers while it runs queue it
    /// once more afterwards, in the best lane seen.
    #[test]
    fn running_objects_are_held_then_requeued_once() {
        let mut queue = WorkQueue::default();
        queue.add("a", Lane::Normal);
        queue.add("z", Lane::Normal);
        assert_eq!(queue.take(), Some("a"));
        assert!(!queue.add("a", Lane::Normal));
        assert!(!queue.add("a", Lane::Fast));
        assert_eq!(queue.take(), Some("z"));
        assert_eq!(queue.take(), None, "a is running, not handed out again");
        assert!(queue.done(&"a"));
        assert_eq!(queue.depth(), (1, 0));
        assert_eq!(queue.take(), Some("a"));
        assert!(!queue.done(&"a"));
        assert_eq!(queue.take(), None);
    }

    /// [CP-53], [CP-54]: timed requeues keep the earliest deadline, run in the normal lane when
    /// due, and are dropped once the object runs for another reason.
    #[test]
    fn cp53_timers_keep_the_earliest_and_yield_to_triggers() {
        let mut queue = WorkQueue::default();
        let t0 = Instant::now();
        assert!(queue.add_at("a", t0 + Duration::from_secs(10)));
        assert!(queue.add_at("a", t0 + Duration::from_secs(5)));
        assert!(!queue.add_at("a", t0 + Duration::from_secs(7)));
        assert!(!queue.add_at("b", t0 + Duration::from_secs(6)));
        assert_eq!(queue.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(queue.release_due(t0 + Duration::from_secs(4)), 0);
        assert_eq!(queue.release_due(t0 + Duration::from_secs(5)), 1);
        assert_eq!(queue.next_deadline(), Some(t0 + Duration::from_secs(6)));
        queue.add("b", Lane::Fast);
        assert_eq!(drain(&mut queue), ["b", "a"]);
        assert_eq!(queue.next_deadline(), None, "b's timer went when b ran");
    }
}

//! The model queue: every call to the chat model takes a slot here first, so that at most
//! `ollama.max_parallel` answers are written at once and the rest wait their turn.
//!
//! Fairness is round-robin between users, FIFO within a user: someone who sends five questions
//! in a row does not make everybody else wait behind all five; each user in turn gets the next
//! free slot. The queue is bounded (`limits.queue_max`), and so is each user's share of it
//! (`limits.queue_per_user`, for the users it applies to); a full queue refuses at once with a
//! "busy" reply instead of letting waits grow without end. Waiters see their position (1 = next)
//! change as the queue moves. Dropping a [`Slot`] (an asker who went away) leaves the queue.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// Why a question cannot join the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueFull {
    /// `limits.queue_max` questions wait already.
    #[error("the model queue is full")]
    Everyone,
    /// This user has `limits.queue_per_user` questions waiting already.
    #[error("this user has the most questions waiting that one user may")]
    User,
}

/// The fair, bounded queue in front of the chat model.
#[derive(Clone)]
pub struct ModelQueue {
    inner: Arc<Inner>,
}

struct Inner {
    max_parallel: usize,
    max_waiting: usize,
    max_per_user: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: usize,
    next_id: u64,
    /// Users with waiters, in the order they will next be served.
    users: VecDeque<UserQueue>,
    /// Waiters admitted whose slot is still held.
    admitted: HashSet<u64>,
}

struct UserQueue {
    user: String,
    waiters: VecDeque<Waiter>,
}

struct Waiter {
    id: u64,
    /// 0 once admitted, else the position (1 = next).
    position: watch::Sender<usize>,
}

/// A place in the queue, then a slot: dropping it leaves the queue or frees the slot.
pub struct Slot {
    inner: Arc<Inner>,
    id: u64,
    position: watch::Receiver<usize>,
}

impl ModelQueue {
    /// A queue that runs `max_parallel` at once, lets at most `max_waiting` wait, and at most
    /// `max_per_user` of one user (when [`enter`](Self::enter) is told to count them).
    pub fn new(max_parallel: usize, max_waiting: usize, max_per_user: usize) -> ModelQueue {
        let inner = Inner {
            max_parallel: max_parallel.max(1),
            max_waiting,
            max_per_user: max_per_user.max(1),
            state: Mutex::default(),
        };
        ModelQueue { inner: Arc::new(inner) }
    }

    /// Joins the queue as `user`; with `capped`, refused when `user` has `max_per_user`
    /// questions waiting already. The slot may be admitted at once (position 0).
    pub fn enter(&self, user: &str, capped: bool) -> Result<Slot, QueueFull> {
        let mut state = self.inner.lock();
        let waiting: usize = state.users.iter().map(|u| u.waiters.len()).sum();
        let full = state.running >= self.inner.max_parallel;
        if full && waiting >= self.inner.max_waiting {
            return Err(QueueFull::Everyone);
        }
        let mine = state.users.iter().find(|u| u.user == user).map_or(0, |u| u.waiters.len());
        if capped && full && mine >= self.inner.max_per_user {
            return Err(QueueFull::User);
        }
        state.next_id += 1;
        let id = state.next_id;
        let (tx, rx) = watch::channel(usize::MAX);
        match state.users.iter_mut().find(|u| u.user == user) {
            Some(queue) => queue.waiters.push_back(Waiter { id, position: tx }),
            None => state
                .users
                .push_back(UserQueue { user: user.to_owned(), waiters: VecDeque::from([Waiter { id, position: tx }]) }),
        }
        self.inner.dispatch(&mut state);
        drop(state);
        Ok(Slot { inner: self.inner.clone(), id, position: rx })
    }

    /// Questions waiting (not yet admitted).
    pub fn waiting(&self) -> usize {
        self.inner.lock().users.iter().map(|u| u.waiters.len()).sum()
    }

    /// Answers being written now.
    pub fn running(&self) -> usize {
        self.inner.lock().running
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits waiters while slots are free, then tells every waiter its position.
    fn dispatch(&self, state: &mut State) {
        while state.running < self.max_parallel {
            let Some(mut queue) = state.users.pop_front() else {
                break;
            };
            if let Some(waiter) = queue.waiters.pop_front() {
                state.running += 1;
                state.admitted.insert(waiter.id);
                let _ = waiter.position.send(0);
            }
            if !queue.waiters.is_empty() {
                state.users.push_back(queue);
            }
        }
        // Round r serves the r-th waiter of each user, in the users' order.
        let mut position = 0;
        let longest = state.users.iter().map(|u| u.waiters.len()).max().unwrap_or(0);
        for round in 0..longest {
            for queue in &state.users {
                if let Some(waiter) = queue.waiters.get(round) {
                    position += 1;
                    waiter.position.send_if_modified(|p| std::mem::replace(p, position) != position);
                }
            }
        }
        metrics::gauge!("footnote_queue_depth").set(position as f64);
        metrics::gauge!("footnote_queue_running").set(state.running as f64);
    }
}

impl Slot {
    /// The current position: 0 when admitted, 1 when next.
    pub fn position(&self) -> usize {
        *self.position.borrow()
    }

    /// Waits until admitted, calling `moved` with each new position on the way.
    pub async fn admitted<F, Fut>(&mut self, mut moved: F)
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            let position = *self.position.borrow_and_update();
            if position == 0 {
                return;
            }
            moved(position).await;
            if self.position.changed().await.is_err() {
                return; // cannot happen: the sender lives while the slot is queued
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        if state.admitted.remove(&self.id) {
            state.running -= 1;
        } else {
            for queue in &mut state.users {
                queue.waiters.retain(|w| w.id != self.id);
            }
            state.users.retain(|u| !u.waiters.is_empty());
        }
        self.inner.dispatch(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_at_a_time_and_positions_follow_the_queue() {
        let q = ModelQueue::new(1, 10, 10);
        let a = q.enter("ann", true).unwrap();
        let b = q.enter("bob", true).unwrap();
        let c = q.enter("cat", true).unwrap();
        assert_eq!((a.position(), b.position(), c.position()), (0, 1, 2));
        drop(a);
        assert_eq!((b.position(), c.position()), (0, 1));
        drop(b);
        assert_eq!(c.position(), 0);
        drop(c);
        assert_eq!((q.running(), q.waiting()), (0, 0));
    }

    #[test]
    fn users_take_turns() {
        let q = ModelQueue::new(1, 10, 10);
        let running = q.enter("ann", true).unwrap();
        let ann2 = q.enter("ann", true).unwrap();
        let ann3 = q.enter("ann", true).unwrap();
        let bob = q.enter("bob", true).unwrap();
        // bob asked after ann's two waiting questions but is served between them.
        assert_eq!((ann2.position(), bob.position(), ann3.position()), (1, 2, 3));
        drop(running);
        assert_eq!((ann2.position(), bob.position(), ann3.position()), (0, 1, 2));
        drop(ann2);
        assert_eq!((bob.position(), ann3.position()), (0, 1));
    }

    #[test]
    fn leaving_the_queue_moves_the_others_up_and_full_is_refused() {
        let q = ModelQueue::new(1, 2, 2);
        let _a = q.enter("a", true).unwrap();
        let b = q.enter("b", true).unwrap();
        let c = q.enter("c", true).unwrap();
        assert_eq!(q.enter("d", true).err(), Some(QueueFull::Everyone));
        drop(b);
        assert_eq!(c.position(), 1);
        assert!(q.enter("d", true).is_ok());
    }

    #[test]
    fn one_user_cannot_fill_the_queue() {
        let q = ModelQueue::new(1, 10, 2);
        let _running = q.enter("eve", true).unwrap();
        let _w1 = q.enter("eve", true).unwrap();
        let w2 = q.enter("eve", true).unwrap();
        assert_eq!(q.enter("eve", true).err(), Some(QueueFull::User));
        assert!(q.enter("ann", true).is_ok(), "the others still get in");
        assert!(q.enter("eve", false).is_ok(), "uncapped users (the operator) are not counted");
        drop(w2);
        assert!(q.enter("eve", true).is_ok(), "a place freed up");
    }

    #[test]
    fn max_parallel_admits_several() {
        let q = ModelQueue::new(2, 4, 4);
        let a = q.enter("a", true).unwrap();
        let b = q.enter("b", true).unwrap();
        let c = q.enter("c", true).unwrap();
        assert_eq!((a.position(), b.position(), c.position()), (0, 0, 1));
    }
}

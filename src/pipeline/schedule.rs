//! Which release of a stage's deploy may start next: a release starts once everything it needs
//! has been deployed (and found ready); one whose need failed, or was never attempted, is never
//! attempted. Pure bookkeeping, so the order rules are tested without a cluster.

use crate::config::stages::needs::Graph;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Succeeded,
    Failed,
    /// Never attempted; the need that stopped it, when one did.
    Skipped(Option<usize>),
}

pub(super) struct Schedule<'g> {
    graph: &'g Graph,
    states: Vec<State>,
}

impl<'g> Schedule<'g> {
    pub(super) fn new(graph: &'g Graph) -> Schedule<'g> {
        Schedule { graph, states: vec![State::Waiting; graph.needs.len()] }
    }

    /// The first waiting release whose needs all succeeded, marked running.
    pub(super) fn start_next(&mut self) -> Option<usize> {
        let next = (0..self.states.len()).find(|&i| {
            self.states[i] == State::Waiting && self.graph.needs[i].iter().all(|&n| self.states[n] == State::Succeeded)
        })?;
        self.states[next] = State::Running;
        Some(next)
    }

    pub(super) fn finish(&mut self, index: usize, succeeded: bool) {
        self.states[index] = if succeeded { State::Succeeded } else { State::Failed };
    }

    /// Waiting releases that can never start (a need failed or was skipped), marked skipped,
    /// each with the need that stopped it; repeated until what they stop is skipped too.
    pub(super) fn skip_blocked(&mut self) -> Vec<(usize, usize)> {
        let mut skipped = Vec::new();
        loop {
            let blocked = (0..self.states.len()).find_map(|i| {
                let need = self.graph.needs[i]
                    .iter()
                    .find(|&&n| matches!(self.states[n], State::Failed | State::Skipped(_)))?;
                (self.states[i] == State::Waiting).then_some((i, *need))
            });
            let Some((index, need)) = blocked else { return skipped };
            self.states[index] = State::Skipped(Some(need));
            skipped.push((index, need));
        }
    }

    /// Every waiting release, marked skipped (the run stops starting releases).
    pub(super) fn skip_waiting(&mut self) {
        for state in &mut self.states {
            if *state == State::Waiting {
                *state = State::Skipped(None);
            }
        }
    }

    pub(super) fn running(&self) -> usize {
        self.states.iter().filter(|s| **s == State::Running).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(needs: &[&[usize]]) -> Graph {
        Graph { needs: needs.iter().map(|n| n.to_vec()).collect(), declared: true, left_out: Vec::new() }
    }

    fn started(schedule: &mut Schedule) -> Vec<usize> {
        std::iter::from_fn(|| schedule.start_next()).collect()
    }

    #[test]
    fn a_release_starts_once_everything_it_needs_succeeded() {
        // 0 operator, 1 database, 2 web needs both, 3 worker needs database.
        let graph = graph(&[&[], &[], &[0, 1], &[1]]);
        let mut schedule = Schedule::new(&graph);
        assert_eq!(started(&mut schedule), [0, 1], "what needs nothing starts together");
        schedule.finish(1, true);
        assert_eq!(started(&mut schedule), [3], "web still waits for the operator");
        schedule.finish(0, true);
        assert_eq!(started(&mut schedule), [2]);
        assert_eq!(schedule.running(), 2);
    }

    #[test]
    fn a_failure_stops_its_dependents_and_lets_independent_branches_finish() {
        // 0 database, 1 api needs database, 2 frontend needs api, 3 cache needs nothing.
        let graph = graph(&[&[], &[0], &[1], &[]]);
        let mut schedule = Schedule::new(&graph);
        assert_eq!(started(&mut schedule), [0, 3]);
        schedule.finish(0, false);
        assert_eq!(schedule.skip_blocked(), [(1, 0), (2, 1)], "api, then frontend through api");
        assert_eq!(started(&mut schedule), Vec::<usize>::new());
        assert_eq!(schedule.running(), 1, "the cache goes on");
        schedule.finish(3, true);
        assert_eq!(schedule.running(), 0);
    }

    #[test]
    fn file_order_is_a_chain_and_a_stop_skips_the_rest() {
        let chain = graph(&[&[], &[0], &[1]]);
        let mut schedule = Schedule::new(&chain);
        assert_eq!(started(&mut schedule), [0]);
        schedule.finish(0, true);
        assert_eq!(started(&mut schedule), [1]);
        schedule.skip_waiting();
        schedule.finish(1, true);
        assert_eq!(started(&mut schedule), Vec::<usize>::new(), "nothing starts after a signal");
        assert!(schedule.skip_blocked().is_empty(), "already skipped, without a need to blame");
    }
}

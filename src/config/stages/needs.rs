//! The order in which a stage's releases deploy: `needs` between releases, as a graph. A
//! project whose releases declare no `needs` deploys in file order, each release after the one
//! before it; once one release declares `needs`, only the declared needs order the deploy and
//! releases that need nothing of each other deploy side by side.

use super::model::{Project, Target};

/// What each target of a deploy waits for, by index into the targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// `needs[i]`: the targets that must be deployed and ready before target `i` starts.
    pub needs: Vec<Vec<usize>>,
    /// The needs are the releases' own (`false`: file order, no release declares `needs`).
    pub declared: bool,
    /// Needs on releases this deploy leaves out (`--release`): target index, release needed.
    pub left_out: Vec<(usize, String)>,
}

impl Graph {
    /// Whether a declared need of another target waits for target `index`.
    pub fn is_needed(&self, index: usize) -> bool {
        self.declared && self.needs.iter().any(|needs| needs.contains(&index))
    }
}

impl Project {
    /// Whether any release declares `needs` (else releases deploy in file order).
    pub fn orders_by_needs(&self) -> bool {
        self.releases.iter().any(|r| !r.needs.is_empty())
    }

    /// The graph a deploy of `targets` (releases of one stage) follows.
    pub fn deploy_graph(&self, targets: &[Target]) -> Graph {
        if !self.orders_by_needs() {
            let needs = (0..targets.len()).map(|i| i.checked_sub(1).into_iter().collect()).collect();
            return Graph { needs, declared: false, left_out: Vec::new() };
        }
        let index_of = |name: &str| targets.iter().position(|t| t.release.name == name);
        let mut left_out = Vec::new();
        let needs = targets
            .iter()
            .enumerate()
            .map(|(i, target)| {
                let mut needed = Vec::new();
                for name in &target.release.needs {
                    match index_of(name) {
                        Some(index) => needed.push(index),
                        None => left_out.push((i, name.clone())),
                    }
                }
                needed
            })
            .collect();
        Graph { needs, declared: true, left_out }
    }

    /// The releases in deploy order, as groups: each group's releases need only releases of the
    /// groups before it (file order, one release per group, when no release declares `needs`).
    pub fn deploy_levels(&self) -> Vec<Vec<&str>> {
        let names: Vec<&str> = self.releases.iter().map(|r| r.name.as_str()).collect();
        if !self.orders_by_needs() {
            return names.into_iter().map(|name| vec![name]).collect();
        }
        let needs: Vec<Vec<usize>> = self
            .releases
            .iter()
            .map(|r| r.needs.iter().filter_map(|n| names.iter().position(|name| name == n)).collect())
            .collect();
        levels(&needs).into_iter().map(|level| level.into_iter().map(|i| names[i]).collect()).collect()
    }
}

/// A cycle in `needs`, if there is one: the indexes along it, the first repeated at the end
/// (`[a, b, a]`: a needs b, b needs a).
pub fn cycle(needs: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(node: usize, needs: &[Vec<usize>], marks: &mut [Mark], path: &mut Vec<usize>) -> Option<Vec<usize>> {
        marks[node] = Mark::OnPath;
        path.push(node);
        for &next in &needs[node] {
            match marks[next] {
                Mark::OnPath => {
                    let start = path.iter().position(|&n| n == next).unwrap_or(0);
                    return Some(path[start..].iter().copied().chain([next]).collect());
                }
                Mark::New => {
                    if let Some(found) = visit(next, needs, marks, path) {
                        return Some(found);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[node] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; needs.len()];
    (0..needs.len()).find_map(|node| match marks[node] {
        Mark::New => visit(node, needs, &mut marks, &mut Vec::new()),
        _ => None,
    })
}

/// The nodes of an acyclic graph in groups: the first group needs nothing, each later group
/// needs only nodes of earlier groups (each node in the first group it can be in), in index
/// order within a group.
pub fn levels(needs: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut level: Vec<Option<usize>> = vec![None; needs.len()];
    let mut remaining = needs.len();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    while remaining > 0 {
        let depth = groups.len();
        let group: Vec<usize> = (0..needs.len())
            .filter(|&i| level[i].is_none() && needs[i].iter().all(|&n| level[n].is_some_and(|l| l < depth)))
            .collect();
        if group.is_empty() {
            break; // a cycle: the validator refuses the file before this is asked
        }
        for &i in &group {
            level[i] = Some(depth);
        }
        remaining -= group.len();
        groups.push(group);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_is_found_with_its_path() {
        assert_eq!(cycle(&[vec![1], vec![2], vec![]]), None);
        assert_eq!(cycle(&[vec![1], vec![2], vec![0]]), Some(vec![0, 1, 2, 0]));
        assert_eq!(cycle(&[vec![], vec![2], vec![1]]), Some(vec![1, 2, 1]));
        assert_eq!(cycle(&[vec![0]]), Some(vec![0, 0]));
        // A diamond is no cycle.
        assert_eq!(cycle(&[vec![], vec![0], vec![0], vec![1, 2]]), None);
    }

    #[test]
    fn levels_group_what_can_deploy_together() {
        // 0 operator, 1 database, 2 web needs both, 3 worker needs database, 4 frontend needs web.
        let needs = [vec![], vec![], vec![0, 1], vec![1], vec![2]];
        assert_eq!(levels(&needs), vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(levels(&[vec![1], vec![]]), vec![vec![1], vec![0]], "later in the file, earlier in the graph");
        assert!(levels(&[]).is_empty());
    }
}

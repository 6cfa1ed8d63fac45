//! Which holders sign a request: pure choice, no I/O.

/// The nodes a coordinator may put in one DKLs23 or FROST session now: the ready ones, and no
/// two that a ban keeps apart.
pub(super) struct Eligible {
    /// Ready nodes (sorted).
    pub ready: Vec<String>,
    /// Pairs that must not run together.
    pub apart: Vec<(String, String)>,
}

impl Eligible {
    /// Whether `nodes` may run one session together.
    pub fn allows(&self, nodes: &[String]) -> bool {
        nodes.iter().all(|n| self.ready.contains(n))
            && !self.apart.iter().any(|(a, b)| nodes.contains(a) && nodes.contains(b))
    }
}

/// Pick exactly `need` signers from `candidates` (the ready holders, sorted): `me` first when it
/// is one (saves a hop), then a rotation chosen by the tx id so load spreads over the committee,
/// never two nodes of a pair in `apart` (a DKLs23 ban between them); when no set with `me` is
/// free of bans, one without it. Sorted; `None` when no such set is found.
pub(super) fn pick_signers(
    candidates: &[String],
    me: &str,
    tx_id: &str,
    need: usize,
    apart: &[(String, String)],
) -> Option<Vec<String>> {
    let rotation = rotation(candidates, tx_id);
    let with_me = candidates.iter().filter(|c| *c == me).chain(rotation.clone());
    greedy(with_me, need, apart).or_else(|| greedy(rotation.filter(|c| *c != me), need, apart))
}

/// `candidates` from a place chosen by the tx id, wrapping around: how load spreads over the
/// committee.
pub(super) fn rotation<'a>(
    candidates: &'a [String],
    tx_id: &str,
) -> impl Iterator<Item = &'a String> + Clone {
    let offset = tx_id.bytes().fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
    let n = candidates.len();
    (0..n).map(move |i| &candidates[(offset + i) % n])
}

fn greedy<'a>(
    order: impl Iterator<Item = &'a String>,
    need: usize,
    apart: &[(String, String)],
) -> Option<Vec<String>> {
    let conflict = |a: &str, b: &str| apart.iter().any(|(x, y)| (x == a && y == b) || (x == b && y == a));
    let mut signers: Vec<String> = Vec::with_capacity(need);
    for c in order {
        if signers.len() == need {
            break;
        }
        if !signers.contains(c) && !signers.iter().any(|s| conflict(s, c)) {
            signers.push(c.clone());
        }
    }
    if signers.len() < need {
        return None;
    }
    signers.sort();
    Some(signers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn picks_exactly_need_with_self_first() {
        let c = nodes(&["a", "b", "c"]);
        for tx in ["t1", "t2", "t3", "t4"] {
            let s = pick_signers(&c, "b", tx, 2, &[]).unwrap();
            assert_eq!(s.len(), 2);
            assert!(s.contains(&"b".to_owned()));
        }
        assert_eq!(pick_signers(&c, "x", "t", 3, &[]).unwrap(), c);
        assert_eq!(pick_signers(&c, "a", "t", 4, &[]), None);
    }

    #[test]
    fn never_picks_a_banned_pair() {
        let c = nodes(&["a", "b", "c"]);
        let apart = vec![("a".to_owned(), "c".to_owned())];
        for tx in ["t1", "t2", "t3", "t4", "t5"] {
            let s = pick_signers(&c, "a", tx, 2, &apart).unwrap();
            assert_eq!(s, nodes(&["a", "b"]), "{tx}");
            let s = pick_signers(&c, "c", tx, 2, &apart).unwrap();
            assert_eq!(s, nodes(&["b", "c"]), "{tx}");
            // A coordinator banned by both others still finds a set: without itself.
            let both = vec![("a".to_owned(), "c".to_owned()), ("b".to_owned(), "c".to_owned())];
            assert_eq!(pick_signers(&c, "c", tx, 2, &both).unwrap(), nodes(&["a", "b"]), "{tx}");
        }
        // With t+1 = 3 every set holds the banned pair.
        assert_eq!(pick_signers(&c, "a", "t", 3, &apart), None);
    }
}

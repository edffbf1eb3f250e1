//! A seeded, hand-driven network that drops, delays and reorders
//! messages and partitions peers at random, while proposals keep coming.
//! Safety: replicas that applied the same index hold the same data, and
//! no acknowledged proposal is ever lost.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;

struct Chaos {
    c: Cluster<MemoryEngine>,
    rng: StdRng,
    held: Vec<Message>,
    /// Per mille of messages dropped and delayed.
    drop: u32,
    delay: u32,
}

impl Chaos {
    /// One round: every Ready handled, its messages dropped, delayed or
    /// delivered in random order, and some delayed ones released.
    fn round(&mut self) {
        let mut msgs: Vec<Message> = Vec::new();
        for p in self.c.peers.values_mut() {
            msgs.extend(p.handle_ready().unwrap());
        }
        if self.rng.random_ratio(1, 3) {
            let n = self.rng.random_range(0..=self.held.len());
            msgs.extend(self.held.drain(..n));
        }
        msgs.shuffle(&mut self.rng);
        for m in msgs {
            let roll = self.rng.random_range(0..1000);
            if roll < self.drop || self.c.cut.contains(&(m.from, m.to)) {
                continue;
            }
            if roll < self.drop + self.delay {
                self.held.push(m);
                continue;
            }
            if let Some(p) = self.c.peers.get_mut(&m.to) {
                let _ = p.step(m);
            }
        }
    }

    /// Replicas at the same applied index must hold identical data.
    fn check_safety(&self) {
        let ids: Vec<u64> = self.c.peers.keys().copied().collect();
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                if self.c.peers[a].applied_index() == self.c.peers[b].applied_index() {
                    assert_eq!(
                        self.c.dump(*a),
                        self.c.dump(*b),
                        "peers {a} and {b} diverged"
                    );
                }
            }
        }
    }
}

fn run(seed: u64) {
    let mut chaos = Chaos {
        c: Cluster::memory(&[1, 2, 3], &[]),
        rng: StdRng::seed_from_u64(seed),
        held: Vec::new(),
        drop: 100,
        delay: 150,
    };
    let mut acked: Vec<(String, Outcome)> = Vec::new();
    for step in 0..400u64 {
        match chaos.rng.random_range(0..10) {
            0..=3 => {
                if let Some(leader) = chaos
                    .c
                    .peers
                    .values()
                    .find(|p| p.is_leader())
                    .map(|p| p.id())
                {
                    let key = format!("k{seed}-{step}");
                    let out: Outcome = Arc::new(Mutex::new(None));
                    let slot = Arc::clone(&out);
                    chaos.c.peers.get_mut(&leader).unwrap().propose(
                        &put(&key, 1000 + step),
                        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
                    );
                    acked.push((key, out));
                }
            }
            4 => {
                let lone = chaos.rng.random_range(1..=3u64);
                let others: Vec<u64> = (1..=3).filter(|i| *i != lone).collect();
                chaos.c.partition(&[lone], &others);
            }
            5 => chaos.c.heal(),
            _ => {}
        }
        for p in chaos.c.peers.values_mut() {
            p.tick();
        }
        chaos.round();
        chaos.check_safety();
    }
    // Calm: no faults, everything delivered, until all replicas agree.
    chaos.c.heal();
    chaos.drop = 0;
    chaos.delay = 0;
    for _ in 0..200 {
        for p in chaos.c.peers.values_mut() {
            p.tick();
        }
        chaos.round();
        let applied: Vec<u64> = chaos.c.peers.values().map(|p| p.applied_index()).collect();
        if chaos.held.is_empty()
            && applied.windows(2).all(|w| w[0] == w[1])
            && chaos.c.peers.values().any(|p| p.is_leader())
        {
            break;
        }
    }
    chaos.c.assert_replicas_equal(&[1, 2, 3]);
    let data = chaos.c.dump(1);
    let mut ok = 0;
    for (key, out) in &acked {
        if let Some(Ok(_)) = &*out.lock().unwrap() {
            ok += 1;
            let present = data.iter().any(|(cf, k, _)| {
                *cf == Cf::Lock && duet_storage::mvcc::decode_key(k).unwrap() == key.as_bytes()
            });
            assert!(present, "seed {seed}: acknowledged {key} was lost");
        }
    }
    assert!(
        ok > 10,
        "seed {seed}: the cluster made progress ({ok} acknowledged)"
    );
    eprintln!(
        "chaos seed {seed}: {ok} of {} proposals acknowledged",
        acked.len()
    );
}

#[test]
fn drops_delays_reorders_and_partitions_lose_nothing() {
    for seed in 0..6 {
        run(seed);
    }
}

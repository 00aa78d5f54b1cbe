//! `DistributedSampler`: PyTorch's unshuffled shares (padding, drop_last, interleaving)
//! from a golden fixture; the shuffled shares' partition properties (disjoint or padded
//! by repetition, covering, equal lengths, the same order on every rank, a new one each
//! epoch); and `DataLoader::sampler` (the rank's batches, the shared epoch, errors).

mod common;

use common::{assert_err, Golden};
use kiln::data::{DataLoader, DistributedSampler, TensorDataset};
use kiln::{Device, Error, Tensor};
use std::collections::BTreeSet;

/// Every rank's indices of one epoch.
fn shares(n: usize, w: usize, seed: u64, epoch: u64, drop_last: bool) -> Vec<Vec<usize>> {
    (0..w)
        .map(|r| {
            let s = DistributedSampler::with_replicas(n, w, r)
                .unwrap()
                .seed(seed)
                .drop_last(drop_last);
            s.set_epoch(epoch);
            let idx = s.indices().unwrap();
            assert_eq!(idx.len(), s.len(), "n {n} w {w} rank {r}: len()");
            idx
        })
        .collect()
}

#[test]
fn unshuffled_shares_equal_pytorch() {
    let golden = Golden::load("distributed_sampler");
    for n in [0, 1, 2, 5, 10, 11, 13] {
        for w in [1, 2, 3, 4, 7] {
            for r in 0..w {
                for d in [0, 1] {
                    let key = format!("n{n}_w{w}_r{r}_d{d}");
                    let want: Vec<i64> = golden.get(&key).to_vec().unwrap();
                    let s = DistributedSampler::with_replicas(n, w, r)
                        .unwrap()
                        .shuffle(false)
                        .drop_last(d == 1);
                    let got: Vec<i64> = s
                        .indices()
                        .unwrap()
                        .into_iter()
                        .map(|i| i64::try_from(i).unwrap())
                        .collect();
                    assert_eq!(got, want, "{key}");
                }
            }
        }
    }
}

#[test]
fn shuffled_shares_partition_the_epoch() {
    for (n, w) in [(1, 3), (10, 2), (10, 4), (11, 3), (13, 4), (100, 7)] {
        for drop_last in [false, true] {
            let parts = shares(n, w, 5, 2, drop_last);
            let per = if drop_last { n / w } else { n.div_ceil(w) };
            assert!(parts.iter().all(|p| p.len() == per), "equal lengths");
            // Interleaved back, the ranks' shares are PyTorch's whole order: a
            // permutation's prefix (drop_last) or a permutation padded by its start.
            let whole: Vec<usize> = (0..per * w).map(|p| parts[p % w][p / w]).collect();
            let head = &whole[..whole.len().min(n)];
            assert_eq!(
                head.iter().collect::<BTreeSet<_>>().len(),
                head.len(),
                "n {n} w {w}: no index twice before padding"
            );
            if drop_last {
                assert_eq!(whole.len(), w * (n / w));
            } else {
                assert_eq!(
                    head.iter().copied().collect::<BTreeSet<_>>(),
                    (0..n).collect()
                );
                let pad = whole.len() - n;
                assert_eq!(&whole[n..], &whole[..pad], "padding repeats the start");
            }
        }
    }
}

#[test]
fn every_rank_draws_the_same_order_and_epochs_differ() {
    let (n, w) = (50, 4);
    let epoch0 = shares(n, w, 9, 0, false);
    assert_eq!(
        shares(n, w, 9, 0, false),
        epoch0,
        "independent samplers agree"
    );
    let epoch1 = shares(n, w, 9, 1, false);
    assert_ne!(epoch1, epoch0, "a new order each epoch");
    assert_ne!(
        shares(n, w, 10, 0, false),
        epoch0,
        "a new order for another seed"
    );
    let unshuffled: Vec<usize> = (0..n).step_by(w).collect();
    assert_ne!(epoch0[0], unshuffled, "shuffled by default, as PyTorch");
}

/// A dataset whose one field is each sample's own index.
fn indexed(n: usize) -> TensorDataset {
    let ids = Tensor::from_vec((0..n as i64).collect(), &[n], &Device::Cpu).unwrap();
    TensorDataset::new(vec![ids]).unwrap()
}

/// The sample indices of one epoch of `loader`, batch by batch.
fn epoch_of(loader: &DataLoader) -> Vec<Vec<usize>> {
    loader
        .iter()
        .unwrap()
        .map(|b| {
            let ids: Vec<i64> = b.unwrap()[0].to_vec().unwrap();
            ids.into_iter()
                .map(|i| usize::try_from(i).unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn one_replica_shuffles_as_a_seeded_loader() {
    let data = indexed(37);
    let loader = DataLoader::new(&data, 37).shuffle(true).seed(4);
    loader.set_epoch(3);
    let sampler = DistributedSampler::with_replicas(37, 1, 0).unwrap().seed(4);
    sampler.set_epoch(3);
    assert_eq!(epoch_of(&loader), vec![sampler.indices().unwrap()]);
}

#[test]
fn a_loader_with_a_sampler_loads_its_rank_share() {
    let data = indexed(11);
    let sampler = DistributedSampler::with_replicas(11, 3, 1).unwrap().seed(1);
    let loader = DataLoader::new(&data, 2)
        .sampler(sampler.clone())
        .prefetch(0);
    assert_eq!((loader.num_samples(), loader.len()), (4, 2));
    sampler.set_epoch(6);
    let want = sampler.indices().unwrap();
    let got = epoch_of(&loader);
    assert_eq!(got.concat(), want);
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2]);
    assert_eq!(
        sampler.epoch(),
        7,
        "each epoch of the loader advances the sampler"
    );
    loader.set_epoch(6);
    assert_eq!(
        epoch_of(&loader).concat(),
        want,
        "loader.set_epoch is the sampler's"
    );
}

#[test]
fn misuse_is_an_error_naming_the_argument() {
    assert_err!(
        DistributedSampler::with_replicas(10, 0, 0),
        Error::InvalidArgument {
            name: "num_replicas",
            ..
        }
    );
    assert_err!(
        DistributedSampler::with_replicas(10, 2, 2),
        Error::InvalidArgument { name: "rank", .. }
    );
    let data = indexed(10);
    let sampler = DistributedSampler::with_replicas(10, 2, 0).unwrap();
    let both = DataLoader::new(&data, 2).shuffle(true).sampler(sampler);
    assert_err!(
        both.iter().map(|_| ()),
        Error::InvalidArgument {
            name: "sampler",
            ..
        }
    );
    let other = DistributedSampler::with_replicas(9, 2, 0).unwrap();
    let wrong_len = DataLoader::new(&data, 2).sampler(other);
    assert_err!(
        wrong_len.iter().map(|_| ()),
        Error::InvalidArgument {
            name: "sampler",
            ..
        }
    );
}

//! Datasets and the DataLoader: the shipped digits file, MNIST IDX and CIFAR-10 binary
//! files written by the tests, `TensorDataset`, and batching (coverage, shuffling,
//! errors, the background thread, uploads to the device).

mod common;

use kiln::data::{
    load_cifar10, load_digits, load_mnist, write_idx_images, write_idx_labels, DataLoader, Dataset,
    TensorDataset,
};
use kiln::{DType, Device, Error, Result, Tensor};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn shipped_digits_load_with_all_classes() {
    let d = load_digits(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/digits/digits.csv.gz"
    ))
    .unwrap();
    assert_eq!(d.len(), 1797);
    assert_eq!(d.images.len(), 1797 * 64);
    assert!(d.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
    for class in 0..10 {
        assert!(d.labels.iter().filter(|&&l| l == class).count() > 150);
    }
    let (train, test) = d.split_every(5).unwrap();
    assert_eq!((train.len(), test.len()), (1437, 360));
}

#[test]
fn batches_cover_every_image_once_and_shuffle_by_seed() {
    let d = load_digits(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/digits/digits.csv.gz"
    ))
    .unwrap();
    let small = d.select(&(0..100).collect::<Vec<_>>()).unwrap();
    let batches = small.batches(32, Some(7), &Device::Cpu).unwrap();
    assert_eq!(batches.len(), 4);
    assert_eq!(batches[0].0.shape(), &[32, 1, 8, 8]);
    assert_eq!(batches[3].1.shape(), &[4]);
    let mut labels: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.1.to_vec::<i64>().unwrap())
        .collect();
    let in_order: Vec<i64> = small.labels.clone();
    assert_ne!(labels, in_order, "a seed shuffles");
    labels.sort();
    let mut sorted = in_order;
    sorted.sort();
    assert_eq!(labels, sorted, "every image exactly once");
    let again = small.batches(32, Some(7), &Device::Cpu).unwrap();
    assert_eq!(
        again[0].1.to_vec::<i64>().unwrap(),
        batches[0].1.to_vec::<i64>().unwrap()
    );
}

#[test]
fn mnist_idx_files_round_trip() {
    let dir = std::env::temp_dir().join(format!("kiln-mnist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 4) as u8).collect();
    for prefix in ["train", "t10k"] {
        write_idx_images(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            &pixels,
            3,
            4,
            5,
        )
        .unwrap();
        write_idx_labels(dir.join(format!("{prefix}-labels-idx1-ubyte")), &[7, 0, 9]).unwrap();
    }
    let (train, test) = load_mnist(&dir).unwrap();
    assert_eq!((train.height, train.width, train.len()), (4, 5, 3));
    assert_eq!(test.labels, vec![7, 0, 9]);
    assert_eq!(train.images[1], 4.0 / 255.0);
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        [0u8, 0, 8, 1, 0, 0, 0, 9, 1],
    )
    .unwrap();
    assert!(matches!(
        load_mnist(&dir),
        Err(Error::InvalidArgument { name: "dir", .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(load_mnist(&dir).is_err());
}

/// `n` samples: x row `i` is `[10 i, 10 i + 1, 10 i + 2]` (f32), label `i` (i64).
fn numbered(n: usize) -> TensorDataset {
    let x: Vec<f32> = (0..n * 3).map(|k| (10 * (k / 3) + k % 3) as f32).collect();
    let y: Vec<i64> = (0..n as i64).collect();
    TensorDataset::new(vec![
        Tensor::from_vec(x, &[n, 3], &Device::Cpu).unwrap(),
        Tensor::from_vec(y, &[n], &Device::Cpu).unwrap(),
    ])
    .unwrap()
}

/// Every batch of one epoch: its labels, after checking that each x row belongs to
/// its label (the fields of a sample stay together).
fn epoch_labels(loader: &DataLoader) -> Vec<Vec<i64>> {
    loader
        .iter()
        .unwrap()
        .map(|b| {
            let b = b.unwrap();
            let (x, y) = (b[0].to_vec::<f32>().unwrap(), b[1].to_vec::<i64>().unwrap());
            assert_eq!(b[0].shape(), &[y.len(), 3]);
            for (r, &label) in y.iter().enumerate() {
                let want: Vec<f32> = (0..3).map(|c| (10 * label + c) as f32).collect();
                assert_eq!(&x[3 * r..3 * r + 3], &want[..], "row {r} of label {label}");
            }
            y
        })
        .collect()
}

#[test]
fn tensor_dataset_checks_its_tensors_and_indices() {
    let cpu = Device::Cpu;
    let err = |r: Result<TensorDataset>| match r {
        Err(Error::InvalidArgument { name, .. }) => name,
        other => panic!("expected an invalid argument, got {other:?}"),
    };
    assert_eq!(err(TensorDataset::new(vec![])), "tensors");
    let a = Tensor::zeros(&[4, 2], DType::F32, &cpu).unwrap();
    let b = Tensor::zeros(&[5], DType::I64, &cpu).unwrap();
    assert_eq!(err(TensorDataset::new(vec![a.clone(), b])), "tensors");
    let scalar = Tensor::scalar(1f32, &cpu).unwrap();
    assert_eq!(err(TensorDataset::new(vec![scalar])), "tensors");
    let d = numbered(4);
    assert_eq!(d.len(), 4);
    let s = d.get(2).unwrap();
    assert_eq!(s[0].to_vec::<f32>().unwrap(), vec![20., 21., 22.]);
    assert_eq!((s[1].shape(), s[1].item::<i64>().unwrap()), (&[][..], 2));
    assert!(matches!(
        d.get(4),
        Err(Error::InvalidArgument { name: "index", .. })
    ));
}

#[test]
fn every_sample_comes_exactly_once_per_epoch() {
    let n = 23;
    let data = numbered(n);
    for shuffle in [false, true] {
        for drop_last in [false, true] {
            for prefetch in [0, 2] {
                let what = format!("shuffle {shuffle} drop_last {drop_last} prefetch {prefetch}");
                let loader = DataLoader::new(&data, 5)
                    .shuffle(shuffle)
                    .drop_last(drop_last)
                    .prefetch(prefetch)
                    .seed(11);
                let batches = epoch_labels(&loader);
                let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
                let want = if drop_last {
                    vec![5; 4]
                } else {
                    vec![5, 5, 5, 5, 3]
                };
                assert_eq!(sizes, want, "{what}");
                assert_eq!(loader.len(), want.len(), "{what}");
                let all: Vec<i64> = batches.concat();
                let distinct: BTreeSet<i64> = all.iter().copied().collect();
                assert_eq!(distinct.len(), all.len(), "{what}: a sample came twice");
                assert!(distinct.iter().all(|&i| (0..n as i64).contains(&i)));
                if !shuffle {
                    assert_eq!(all, (0..all.len() as i64).collect::<Vec<_>>(), "{what}");
                } else {
                    assert_ne!(all, (0..all.len() as i64).collect::<Vec<_>>(), "{what}");
                }
            }
        }
    }
}

#[test]
fn shuffling_is_reproducible_and_differs_by_epoch() {
    let data = numbered(40);
    let orders = |loader: &DataLoader| -> Vec<Vec<i64>> {
        (0..3).map(|_| epoch_labels(loader).concat()).collect()
    };
    let a = orders(&DataLoader::new(&data, 8).shuffle(true).seed(3));
    let b = orders(&DataLoader::new(&data, 8).shuffle(true).seed(3).prefetch(0));
    assert_eq!(
        a, b,
        "the same seed gives the same epochs, with or without the thread"
    );
    assert_ne!(a[0], a[1], "each epoch has its own order");
    assert_ne!(a[1], a[2]);
    let other = orders(&DataLoader::new(&data, 8).shuffle(true).seed(4));
    assert_ne!(a[0], other[0], "another seed, another order");
    let resumed = DataLoader::new(&data, 8).shuffle(true).seed(3);
    resumed.set_epoch(2);
    assert_eq!(
        epoch_labels(&resumed).concat(),
        a[2],
        "set_epoch resumes an epoch"
    );
    // Without a seed of its own, the loader draws one from kiln's generator.
    let unseeded = || {
        let _own = common::own_generator();
        kiln::manual_seed(5);
        let l = DataLoader::new(&data, 8).shuffle(true);
        (epoch_labels(&l).concat(), epoch_labels(&l).concat())
    };
    let (first, second) = unseeded();
    assert_eq!((first.clone(), second.clone()), unseeded());
    assert_ne!(first, second);
}

/// A dataset whose sample `bad` fails to load, counting the calls to `get`.
#[derive(Clone)]
struct Flaky {
    n: usize,
    bad: usize,
    gets: Arc<AtomicUsize>,
}

impl Dataset for Flaky {
    fn len(&self) -> usize {
        self.n
    }

    fn get(&self, index: usize) -> Result<Vec<Tensor>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        if index == self.bad {
            return Err(Error::InvalidArgument {
                name: "index",
                msg: format!("sample {index} is unreadable"),
            });
        }
        Ok(vec![Tensor::scalar(index as i64, &Device::Cpu)?])
    }
}

#[test]
fn a_failing_get_is_the_error_of_its_batch_only() {
    for prefetch in [0, 1, 3] {
        let data = Flaky {
            n: 10,
            bad: 6,
            gets: Arc::new(AtomicUsize::new(0)),
        };
        let results: Vec<_> = DataLoader::new(&data, 4)
            .prefetch(prefetch)
            .iter()
            .unwrap()
            .collect();
        assert_eq!(results.len(), 3);
        assert_eq!(
            results[0].as_ref().unwrap()[0].to_vec::<i64>().unwrap(),
            [0, 1, 2, 3]
        );
        match &results[1] {
            Err(e) => assert!(e.to_string().contains("sample 6 is unreadable"), "{e}"),
            Ok(_) => panic!("prefetch {prefetch}: the batch holding sample 6 loaded"),
        }
        assert_eq!(
            results[2].as_ref().unwrap()[0].to_vec::<i64>().unwrap(),
            [8, 9]
        );
    }
}

#[test]
fn dropping_the_iterator_stops_its_thread() {
    let gets = Arc::new(AtomicUsize::new(0));
    let data = Flaky {
        n: 10_000,
        bad: usize::MAX,
        gets: gets.clone(),
    };
    let loader = DataLoader::new(&data, 10).prefetch(2);
    drop(data);
    let mut it = loader.iter().unwrap();
    drop(loader);
    // Left holding the dataset: the test's counter and the iterator's thread.
    assert_eq!(Arc::strong_count(&gets), 2);
    it.next().unwrap().unwrap();
    drop(it);
    assert_eq!(
        Arc::strong_count(&gets),
        1,
        "the thread ended and released the dataset"
    );
    let made = gets.load(Ordering::SeqCst);
    // The batch taken, two queued, one being made when the channel closed.
    assert!((10..=40).contains(&made), "{made} samples loaded");
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        gets.load(Ordering::SeqCst),
        made,
        "nothing loads after the drop"
    );
    assert!(matches!(
        DataLoader::new(&numbered(3), 0).iter(),
        Err(Error::InvalidArgument {
            name: "batch_size",
            ..
        })
    ));
}

#[test]
fn samples_of_different_shapes_are_an_error_naming_the_dataset() {
    #[derive(Clone)]
    struct Ragged;
    impl Dataset for Ragged {
        fn len(&self) -> usize {
            3
        }
        fn get(&self, index: usize) -> Result<Vec<Tensor>> {
            Ok(vec![Tensor::zeros(&[index + 1], DType::F32, &Device::Cpu)?])
        }
    }
    let first = DataLoader::new(&Ragged, 2).iter().unwrap().next().unwrap();
    assert!(matches!(
        first,
        Err(Error::InvalidArgument {
            name: "dataset",
            ..
        })
    ));
}

#[test]
fn the_digits_are_a_dataset_too() {
    let d = load_digits(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/digits/digits.csv.gz"
    ))
    .unwrap();
    let sample = Dataset::get(&d, 3).unwrap();
    assert_eq!(sample[0].shape(), &[1, 8, 8]);
    assert_eq!(sample[1].item::<i64>().unwrap(), d.labels[3]);
    let loader = DataLoader::new(&d, 32).drop_last(true);
    let first = loader.iter().unwrap().next().unwrap().unwrap();
    assert_eq!(first[0].shape(), &[32, 1, 8, 8]);
    assert_eq!(
        first[0].to_vec::<f32>().unwrap(),
        d.images[..32 * 64].to_vec()
    );
    assert_eq!(first[1].to_vec::<i64>().unwrap(), d.labels[..32].to_vec());
    assert_eq!(loader.len(), 1797 / 32);
}

/// Writes a CIFAR-10 binary file of `labels.len()` records to `path`; pixel `p` of
/// record `r` is `(r * 7 + p) % 256`.
fn write_cifar(path: &std::path::Path, labels: &[u8]) {
    let mut bytes = Vec::new();
    for (r, &label) in labels.iter().enumerate() {
        bytes.push(label);
        bytes.extend((0..3072).map(|p| ((r * 7 + p) % 256) as u8));
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn cifar10_binary_files_load_with_clear_errors() {
    let dir = std::env::temp_dir().join(format!("kiln-cifar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 1..=5 {
        write_cifar(&dir.join(format!("data_batch_{i}.bin")), &[i, 9 - i]);
    }
    let missing = load_cifar10(&dir).unwrap_err();
    assert!(matches!(
        missing,
        Error::InvalidArgument { name: "dir", .. }
    ));
    assert!(missing.to_string().contains("test_batch.bin"), "{missing}");
    write_cifar(&dir.join("test_batch.bin"), &[0, 3, 7]);

    let (train, test) = load_cifar10(&dir).unwrap();
    assert_eq!((train.len(), test.len()), (10, 3));
    let s = train.get(3).unwrap(); // data_batch_2.bin, record 1
    assert_eq!(s[0].shape(), &[3, 32, 32]);
    assert_eq!(s[1].item::<i64>().unwrap(), 7);
    let px = s[0].to_vec::<f32>().unwrap();
    // Channel-major: green (channel 1), row 2, column 5 is byte 1024 + 2 * 32 + 5.
    let p = 1024 + 2 * 32 + 5;
    assert_eq!(px[p], ((7 + p) % 256) as f32 / 255.0);
    assert_eq!(test.get(2).unwrap()[1].item::<i64>().unwrap(), 7);
    let loader = DataLoader::new(&train, 4).shuffle(true).seed(0);
    assert_eq!(epoch_count(&loader), 10);

    let path = dir.join("data_batch_3.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(3073 + 100);
    std::fs::write(&path, &bytes).unwrap();
    let truncated = load_cifar10(&dir).unwrap_err().to_string();
    assert!(
        truncated.contains("data_batch_3.bin") && truncated.contains("truncated"),
        "{truncated}"
    );
    write_cifar(&path, &[10]);
    let label = load_cifar10(&dir).unwrap_err().to_string();
    assert!(label.contains("label 10"), "{label}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Samples in one epoch of `loader`.
fn epoch_count(loader: &DataLoader) -> usize {
    loader
        .iter()
        .unwrap()
        .map(|b| b.unwrap()[0].shape()[0])
        .sum()
}

#[test]
fn batches_arrive_on_the_device_with_one_upload_per_tensor() {
    let Some(dev) = common::cuda_or_skip("batches_arrive_on_the_device_with_one_upload_per_tensor")
    else {
        return;
    };
    let data = numbered(10);
    let loader = DataLoader::new(&data, 4).shuffle(true).seed(1).device(&dev);
    #[cfg(feature = "cuda-emulator")]
    let waits = kiln::cuda::emulated_stream_waits();
    kiln::cuda::reset_peak_memory_stats(0).unwrap();
    let batches: Vec<Vec<Tensor>> = loader.iter().unwrap().map(|b| b.unwrap()).collect();
    let s = kiln::cuda::memory_stats(0).unwrap();
    assert_eq!(
        s.num_host_to_device, 6,
        "3 batches of 2 tensors, each uploaded once"
    );
    assert_eq!(s.bytes_host_to_device, 10 * (3 * 4 + 8));
    assert_eq!(s.num_device_to_host, 0, "nothing comes back to the host");
    #[cfg(feature = "cuda-emulator")]
    if kiln::cuda::is_emulated() {
        assert_eq!(
            kiln::cuda::emulated_stream_waits() - waits,
            3,
            "one wait per batch"
        );
    }
    let on_cpu = DataLoader::new(&data, 4).shuffle(true).seed(1);
    for (got, want) in batches.iter().zip(on_cpu.iter().unwrap()) {
        let want = want.unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.device(), dev);
            common::assert_values("batch", g, w, 0.0, 0.0);
        }
        // The batch is usable on the compute stream.
        let doubled = got[0].mul_scalar(2.0).unwrap();
        common::assert_values("2x", &doubled, &want[0].mul_scalar(2.0).unwrap(), 0.0, 0.0);
    }
}

//! Dataset loaders: the shipped digits file, and MNIST IDX files written by the test.

use kiln::data::{load_digits, load_mnist, write_idx_images, write_idx_labels};
use kiln::{Device, Error};

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

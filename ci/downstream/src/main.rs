//! One op on the CPU and one on the CUDA device (the emulated one in CI: run with
//! KILN_CUDA_EMULATE=1), through kiln as a dependency, and what the build embedded.

use kiln::{Device, Tensor};

fn main() -> kiln::Result<()> {
    let a = Tensor::from_vec(vec![1f32, 2.0, 3.0, 4.0], &[2, 2], &Device::Cpu)?;
    let b = Tensor::from_vec(vec![5f32, 6.0, 7.0, 8.0], &[2, 2], &Device::Cpu)?;
    let want = vec![19f32, 22.0, 43.0, 50.0];
    let cpu = a.matmul(&b)?.to_vec::<f32>()?;
    assert_eq!(cpu, want, "matmul on the CPU");
    println!("cpu: {cpu:?}");

    let gpu = Device::cuda(0)?;
    let c = a.to_device(&gpu)?.matmul(&b.to_device(&gpu)?)?;
    let on_device = c.to_vec::<f32>()?;
    assert_eq!(on_device, want, "matmul on CUDA device 0");
    println!("cuda:0: {on_device:?}");
    Ok(())
}

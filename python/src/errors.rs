//! The crate's errors as the Python exceptions a caller expects.

use diffusion_regimes::Error;
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::PyErr;

/// `ValueError` for a bad value, shape, dtype, spec or file content;
/// `FileNotFoundError` / `OSError` for files; `KeyboardInterrupt` for an
/// interrupt; `RuntimeError` for a failed computation or a diverged run. The
/// message is the crate's own.
pub fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error.innermost() {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        Error::Io { .. } => PyOSError::new_err(message),
        Error::Interrupted => {
            PyKeyboardInterrupt::new_err("interrupted; rerun the same call to resume")
        }
        Error::Candle(_) | Error::Linalg(_) | Error::Diverged { .. } => {
            PyRuntimeError::new_err(message)
        }
        _ => PyValueError::new_err(message),
    }
}

/// `Result` of the crate into `PyResult`.
pub trait IntoPy<T> {
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPy<T> for diffusion_regimes::Result<T> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}

impl<T> IntoPy<T> for std::result::Result<T, candle_core::Error> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(|e| to_py(Error::Candle(e)))
    }
}

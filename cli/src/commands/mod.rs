pub mod completion;
pub mod decrypt;
pub mod encrypt;
pub mod import;
pub mod keygen;
pub mod keys;
mod literal;
pub mod restore;
pub mod rotate;
pub mod show;
pub mod verify;

use crate::cli::{Cli, Command};
use crate::failure::Result;

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Encrypt(args) => encrypt::run(*args),
        Command::Decrypt(args) => decrypt::run(args),
        Command::Import(args) => import::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Rotate(args) => rotate::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Show(args) => show::run(args),
        Command::Completion(args) => completion::run(args),
    }
}

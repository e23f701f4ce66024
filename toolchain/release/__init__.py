"""The release layer, above every other: `invoke release` turns a built, packaged and verified dist/ into one
directory a CI job uploads as it is (artifacts, checksums, SBOMs, notes)."""

# Custody: `make run` starts the registry on the embedded default home, `make test` runs every test.
SWIFT ?= swift

.PHONY: run run-cluster test build release bench clean format format-check

build:
	scripts/bootstrap
	$(SWIFT) build

release:
	scripts/bootstrap
	$(SWIFT) build -c release --static-swift-stdlib --product custody

run: release
	scripts/serve

# Two daemons on PostgreSQL and SeaweedFS (S3), all on loopback (docs/operations.md, "Scale-out").
run-cluster: release
	scripts/bootstrap --interop
	scripts/run-cluster

test: format-check
	scripts/bootstrap --interop
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	scripts/test-on-engines

bench: release
	scripts/bootstrap --interop
	bench/sign.sh
	bench/registry.sh
	bench/scan.sh
	bench/verify.sh
	bench/audit.sh
	bench/flood.sh
	bench/connections.sh
	bench/huggingface.sh
	bench/oci.sh
	STORE=s3 bench/oci.sh
	bench/cluster.sh

clean:
	rm -rf .build

# Formatting is swift-format's, configured in .swift-format (150 columns, 4 spaces). C function names bound with
# @_silgen_name and keys mirroring upstream test vectors are deliberately not lowerCamelCase.
format:
	$(SWIFT) format format --in-place --recursive --parallel Sources Tests Package.swift

format-check:
	$(SWIFT) format lint --strict --recursive --parallel Sources Tests Package.swift

# Custody: `make run` starts the registry on the embedded default home, `make test` runs every test.
SWIFT ?= swift

.PHONY: run test build release bench clean

build:
	scripts/bootstrap
	$(SWIFT) build

release:
	scripts/bootstrap
	$(SWIFT) build -c release --static-swift-stdlib --product custody

run: release
	scripts/serve

test:
	scripts/bootstrap --interop
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: release
	scripts/bootstrap --interop
	bench/sign.sh
	bench/registry.sh
	bench/scan.sh
	bench/verify.sh
	bench/audit.sh
	bench/flood.sh
	bench/connections.sh

clean:
	rm -rf .build

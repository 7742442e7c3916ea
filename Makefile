# The two commands of the README. Both work from a clean clone on Debian as root.
#   make demo   installs fastl2tp and runs its main job
#   make test   installs the test needs (Debian packages, the package with its test extras) and runs the tests
PYTHON ?= python3
DEB_DEMO_PKGS = iperf3 iputils-ping
DEB_TEST_PKGS = tshark iperf3 iproute2 iputils-ping nftables freeradius freeradius-utils
PYTEST_ARGS ?=

# The tests run their own FreeRADIUS (tests/radius_server.py); the package's service must not hold
# 1812/1813 on the host: stop and disable it right after installing it (systemd or SysV init, by its
# pidfile only; no error where neither is there).
FREERADIUS_SERVICE_OFF = \
	if [ -d /run/systemd/system ]; then systemctl disable --now freeradius >/dev/null 2>&1 || true; \
	else \
		[ -x /etc/init.d/freeradius ] && /etc/init.d/freeradius stop >/dev/null 2>&1; \
		if command -v systemctl >/dev/null 2>&1; then systemctl disable freeradius >/dev/null 2>&1; \
		elif command -v update-rc.d >/dev/null 2>&1; then update-rc.d freeradius disable >/dev/null 2>&1; fi; \
		true; \
	fi

.PHONY: demo test install install-test deb-test deb-demo bench

install:
	$(PYTHON) -m pip install -q -e .

install-test: deb-test
	$(PYTHON) -m pip install -q -e ".[test]"

deb-demo:
	@$(MAKE) --no-print-directory deb-test DEB_TEST_PKGS="$(DEB_DEMO_PKGS)"

deb-test:
	@missing=""; for p in $(DEB_TEST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
		case " $$missing " in *" freeradius "*) $(FREERADIUS_SERVICE_OFF);; esac; \
	fi

demo: deb-demo install
	$(PYTHON) -m fastl2tp demo

test: install-test
	$(PYTHON) -m pytest $(PYTEST_ARGS)

bench: install-test
	$(PYTHON) -m pytest bench --benchmark-only

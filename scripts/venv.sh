# Sourced by demo.sh and test.sh: a virtual environment of the project's own
# in .venv (Debian's system Python refuses 'pip install'), with the project
# installed editable. VENV_EXTRAS picks the extras ("test" for the suite).
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "installing from Debian: python3-venv"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Reinstalled only when pyproject.toml changed since the last install.
stamp=".venv/.installed-${VENV_EXTRAS:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing Buurtlijn and its dependencies into .venv"
  # pip's output only when it fails: a machine's own pip settings can make it chatty.
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${VENV_EXTRAS:+[$VENV_EXTRAS]}" \
      >.venv/pip-install.log 2>&1; then
    cat .venv/pip-install.log >&2
    exit 1
  fi
  touch "$stamp"
fi

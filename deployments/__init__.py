"""Deployment tooling run from a checkout: work pool and block set-up, automations (see deploy.sh)."""

"""What the deploy-time database owner functions share (apps.pgowner, apps.mariadbowner)."""

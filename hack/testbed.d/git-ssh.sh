# An ssh Git host for the suite, offline: a Debian minbase rootfs with openssh-server and
# git, imported as an image (nothing pulled). A test runs it on the kind network with its
# own keys and bare repositories mounted at /srv/keys and /srv/repos, so Flux's
# source-controller (in the cluster) and drill (on the host) both clone over ssh://, as
# from a team's Git host with a deploy key.
# shellcheck shell=bash

GIT_SSH_PACKAGES=openssh-server,git
# The `git` user logs in with git-shell only (clone and fetch; no shell). Its password
# field is `*`, not useradd's `!`: sshd without PAM refuses a locked account even for a
# key. The config reads everything per run from /srv/keys.
GIT_SSH_ROOTFS_SETUP='useradd -d /srv -s /usr/bin/git-shell git && usermod -p "*" git
mkdir -p /run/sshd
git config --system --add safe.directory "*"
cat >/etc/ssh/drill_sshd_config <<CONF
HostKey /srv/keys/host_ed25519
AuthorizedKeysFile /srv/keys/authorized_keys
AllowUsers git
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowTcpForwarding no
X11Forwarding no
CONF'

# git_ssh_image: builds (or keeps) the ssh Git host's image; prints its tag. Run it with
#   /usr/sbin/sshd -D -e -f /etc/ssh/drill_sshd_config
git_ssh_image() {
  base_image "$(image_rootfs gitssh "$GIT_SSH_PACKAGES" "$GIT_SSH_ROOTFS_SETUP")" gitssh
}

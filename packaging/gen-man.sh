#!/bin/sh
# gen-man.sh NOOK VERSION: write the nook(1) man page (roff) on stdout, from the command's
# own help: `nook --help` for the list of commands and `nook COMMAND --help` for each
# command's usage and options. The option tables in src/cli are thus the one source of
# both --help and the man page.
set -eu
nook="$1"
version="$2"
esc() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\\&'/" -e 's/-/\\-/g'; }
verbs=$("$nook" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' | grep -v '^help$')

cat <<EOT
.TH NOOK 1 "" "nook $version" "User Commands"
.SH NAME
nook \- a local-first language-model runtime
.SH SYNOPSIS
.B nook
.I COMMAND
.RI [ ARGS ]
.RI [ OPTIONS ]
.br
.B nook \-\-version
.SH DESCRIPTION
nook runs language models stored as GGUF files on the local machine, with llama.cpp's
numerics and an Ollama-compatible command line and server.
.SH COMMANDS
EOT
"$nook" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\)  *\(.*\)/\1\t\2/p' | while IFS="$(printf '\t')" read -r v s; do
    printf '.TP\n.B %s\n%s\n' "$v" "$(printf '%s' "$s" | esc)"
done
for v in $verbs; do
    printf '.SH "NOOK %s"\n' "$(echo "$v" | tr a-z A-Z)"
    printf '.nf\n'
    "$nook" "$v" --help 2>&1 | esc
    printf '.fi\n'
done
cat <<EOT
.SH EXIT STATUS
0 on success, 1 when the command failed (a file, a model, the context), 2 for a usage
error (an unknown command or option, a bad value). Every failure prints one line
"nook: message" on standard error.
.SH FILES
.TP
.I ~/.config/systemd/user/nook.service, PREFIX/lib/systemd/user/nook.service
the server as a user service: systemctl \-\-user enable \-\-now nook
.SH SECURITY
See docs/security.md in the source tree: the threat model and how to report a
vulnerability.
.SH SEE ALSO
.BR ollama (1)
EOT

# bash completion for nook. Commands and options are read from the command's own help
# (`nook --help`, `nook COMMAND --help`), so they never fall out of date.
_nook() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"
        words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
    fi
    local nook="${words[0]}"
    if [ "$cword" -eq 1 ]; then
        local verbs
        verbs=$("$nook" --help 2>/dev/null | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')
        COMPREPLY=($(compgen -W "$verbs --help --version" -- "$cur"))
        return
    fi
    local verb="${words[1]}"
    if [ "$verb" = help ]; then
        COMPREPLY=($(compgen -W "$("$nook" --help 2>/dev/null | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')" -- "$cur"))
        return
    fi
    if [[ "$cur" == -* ]]; then
        local opts
        opts=$("$nook" "$verb" --help 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    # model paths: .gguf files and directories
    COMPREPLY=($(compgen -f -X '!*.gguf' -- "$cur") $(compgen -d -- "$cur"))
    compopt -o filenames 2>/dev/null
}
complete -F _nook nook

/*
 * The FileDescriptorSet of every service corepiped serves (build/gen/corepipe.protoset, made by
 * protoc --descriptor_set_out --include_imports --include_source_info at build time), embedded
 * as read-only data for server reflection (control/reflection.h: cp_protoset, cp_protoset_end).
 */
	.section .rodata
	.balign 16
	.global cp_protoset
	.type cp_protoset, @object
cp_protoset:
	.incbin PROTOSET_FILE
	.global cp_protoset_end
	.type cp_protoset_end, @object
cp_protoset_end:
	.byte 0
	.section .note.GNU-stack, "", @progbits

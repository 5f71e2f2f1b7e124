/* placeholder: the standard names come with the allocator */
